// The fused step+pull kernel equals the step alone followed by the pull's force from the pre-step x:
// LSGD's leader and group-leader pulls, for every step policy, in float and double.

#include "fused_grid.hpp"

TEMPLATE_PRODUCT_TEST_CASE("fused update = step, then the force of the pre-step x (leader pulls)",
                           "[pull][fused]", (grid::leader_pull, grid::group_leader_pull),
                           ((tt::sgd_case, float), (tt::sgd_case, double), (tt::heavy_ball_case, float),
                            (tt::heavy_ball_case, double), (tt::nesterov_case, float),
                            (tt::nesterov_case, double), (tt::adagrad_case, float),
                            (tt::adagrad_case, double), (tt::adam_case, float), (tt::adam_case, double))) {
  grid::check_fused<TestType>();
}
