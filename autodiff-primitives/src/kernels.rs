//! The catalog of backward kernels that generated code may call, by module of
//! `autodiff_runtime::kernels`: the macro expands it into its typed `Kernel` (a kernel's
//! identity is a variant, never a string), and the runtime into a check that each one
//! exists, so a misspelt or removed kernel fails the runtime's own build.
//!
//! The per-row kernels of the elementwise tables (`tanh_grad`, `maximum_grad_lhs`, ...) are
//! not listed: they are named by their rows in `for_each_unary!` and `for_each_binary!`.

/// Calls `$callback! { module { kernel, .. } .. }` with every backward kernel besides the
/// elementwise tables' own.
#[macro_export]
macro_rules! for_each_kernel {
    ($callback:path) => {
        $callback! {
            binary {
                add_grad_lhs, add_grad_rhs, sub_grad_lhs, sub_grad_rhs,
                mul_grad_lhs, mul_grad_rhs, mul_grad_lhs_ref, mul_grad_rhs_ref,
                div_grad_lhs, div_grad_rhs, div_grad_lhs_ref,
                neg_grad, neg_grad_scalar, mul_grad_scalar, div_grad_lhs_scalar, div_grad_rhs_scalar,
                scale_grad, scale_grad_ref, sum_grad_of_scalar, sub_scalar_grad_scalar, sum_product,
                div_scalar_grad_array, div_scalar_grad_scalar, scalar_div_grad_scalar, scalar_div_grad_array,
                add_grad_fill, sub_grad_rhs_fill, fill_sum, fill_sum_neg, fill_sum_product,
            }
            unary {
                powi_grad, powi_grad_scalar, powf_grad, powf_grad_scalar,
                map_grad, map_grad_capture, map_grad_scalar,
            }
            matmul {
                matmul_grad_lhs, matmul_grad_rhs, matmul_grad_lhs_acc, matmul_grad_rhs_acc,
                matvec_grad_lhs, matvec_grad_rhs, vecmat_grad_lhs, vecmat_grad_rhs, vecdot_grad,
                transpose_grad,
            }
            reduce {
                sum_grad, mean_grad, mean_grad_fill, sum_axis_grad, mean_axis_grad, mean_axis_grad_fill,
            }
            softmax { softmax_grad, log_softmax_grad, }
            loss { mse_grad_pred, mse_grad_target, cross_entropy_grad, }
            conv { conv2d_grad_input, conv2d_grad_weight, conv2d_grad_bias, }
            batch_norm { batch_norm_sums, batch_norm_sums_measuring, batch_norm_grad_input, batch_norm_grad_gamma, batch_norm_grad_beta, batch_norm_grad_beta_direct, }
            pool { max_pool2d_grad, }
            mask { relu_grad_masked, fill_masked, outer_masked, }
            fused {
                chain2, chain3, chain4, fill_chain1, fill_chain2, fill_chain3, fill_chain4,
                outer_chain1, outer_chain2, outer_chain3, outer_chain4,
            }
            rank1 {
                filled_matmul_grad_lhs, filled_matmul_grad_rhs, outer_matmul_grad_lhs, outer_matmul_grad_rhs,
                outer_transpose_grad, outer_neg_grad, outer_scale_grad, outer_scale_grad_scalar,
                outer_sum, outer_sum_neg, outer_add_grad, outer_sub_grad_rhs,
                outer_add_grad_dense, outer_sub_grad_rhs_dense, outer_dense, summed_matmul_grad_rhs,
            }
        }
    };
}
