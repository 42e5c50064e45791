#pragma once
/// \file
/// lbfgs::more_thuente: the More-Thuente line search (J. J. More and D. J. Thuente, "Line search algorithms
/// with guaranteed sufficient decrease", ACM TOMS 20(3), 1994), in reverse communication: it proposes a step,
/// the caller evaluates phi(a) = f(x + a d) and phi'(a) = g(x + a d) . d however it likes (Sandblaster: one
/// batch over the replicas) and feeds both back. Scalars only. It looks for a step satisfying the strong
/// Wolfe conditions
///
///     phi(a) <= phi(0) + ftol * a * phi'(0)      and      |phi'(a)| <= gtol * |phi'(0)|.
///
/// The step update follows the paper: a safeguarded cubic/quadratic interpolation on the interval of
/// uncertainty, on the modified function psi(a) = phi(a) - phi(0) - ftol * a * phi'(0) until a step with
/// psi <= 0 and phi' >= 0 is found (first stage), with extrapolation by a factor in [1.1, 4] before the
/// minimiser is bracketed and bisection when the interval does not shrink by 2/3 in two trials.
/// A non-finite phi or phi' at a trial shrinks the step halfway back to the best step so far, and no later
/// trial goes that far again.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "tether/lbfgs/options.hpp"

namespace tether::lbfgs {

/// Where a line search stands after a trial.
enum class search_state : std::uint8_t {
  evaluate,   ///< evaluate phi and phi' at step() and call update() again
  converged,  ///< step() satisfies the strong Wolfe conditions
  failed,     ///< no acceptable step: failure() says why
};

/// One More-Thuente line search; see the file comment.
class more_thuente {
 public:
  /// Starts a search from phi(0) = f0 with slope phi'(0) = g0 < 0 and first trial step `step` > 0 (clipped
  /// to [min_step, max_step]).
  more_thuente(const line_search_options& o, double f0, double g0, double step)
      : o_(o), finit_(f0), ginit_(g0), gtest_(o.ftol * g0), fx_(f0), gx_(g0), fy_(f0), gy_(g0) {
    width_ = o.max_step - o.min_step;
    width1_ = 2.0 * width_;
    stp_ = std::clamp(step, o.min_step, o.max_step);
    stmin_ = 0.0;
    stmax_ = stp_ + xtrapu * stp_;
  }

  /// The step to evaluate next (or the accepted one after `converged`).
  [[nodiscard]] double step() const noexcept { return stp_; }
  /// Trials evaluated so far.
  [[nodiscard]] std::size_t evaluations() const noexcept { return nfev_; }
  /// Why the search failed (empty before).
  [[nodiscard]] const char* failure() const noexcept { return failure_; }

  /// Feeds phi(step()) = f and phi'(step()) = g; returns what to do next.
  search_state update(double f, double g) {
    ++nfev_;
    if (!std::isfinite(f) || !std::isfinite(g)) return shrink();
    const double ftest = finit_ + stp_ * gtest_;
    if (f <= ftest && std::abs(g) <= o_.gtol * (-ginit_)) return search_state::converged;
    if (brackt_ && (stp_ <= stmin_ || stp_ >= stmax_))
      return fail("rounding errors prevent progress (the trial left the interval of uncertainty)");
    if (brackt_ && stmax_ - stmin_ <= o_.xtol * stmax_)
      return fail("the interval of uncertainty is narrower than xtol");
    if (stp_ == o_.max_step && f <= ftest && g <= gtest_) return fail("the step reached max_step");
    if (stp_ == o_.min_step && (f > ftest || g >= gtest_)) return fail("the step reached min_step");
    if (nfev_ >= o_.max_evaluations) return fail("the line search reached max_evaluations");

    // The first stage ends at a step where psi <= 0 and phi' >= 0.
    if (stage1_ && f <= ftest && g >= 0.0) stage1_ = false;
    if (stage1_ && f <= fx_ && f > ftest) {
      // Interpolate psi instead of phi: psi(a) = phi(a) - a * gtest (the constant phi(0) cancels).
      double fm = f - stp_ * gtest_;
      double fxm = fx_ - stx_ * gtest_;
      double fym = fy_ - sty_ * gtest_;
      double gm = g - gtest_;
      double gxm = gx_ - gtest_;
      double gym = gy_ - gtest_;
      next_trial(stx_, fxm, gxm, sty_, fym, gym, stp_, fm, gm);
      fx_ = fxm + stx_ * gtest_;
      fy_ = fym + sty_ * gtest_;
      gx_ = gxm + gtest_;
      gy_ = gym + gtest_;
    } else {
      next_trial(stx_, fx_, gx_, sty_, fy_, gy_, stp_, f, g);
    }

    // Bisect when two trials did not shrink the interval to 2/3 of its width.
    if (brackt_) {
      if (std::abs(sty_ - stx_) >= 0.66 * width1_) stp_ = stx_ + 0.5 * (sty_ - stx_);
      width1_ = width_;
      width_ = std::abs(sty_ - stx_);
    }
    if (brackt_) {
      stmin_ = std::min(stx_, sty_);
      stmax_ = std::max(stx_, sty_);
    } else {
      stmin_ = stp_ + xtrapl * (stp_ - stx_);
      stmax_ = stp_ + xtrapu * (stp_ - stx_);
    }
    stp_ = std::clamp(stp_, o_.min_step, std::min(o_.max_step, cap_));
    if (stp_ >= cap_) stp_ = stx_ + 0.5 * (cap_ - stx_);
    // When rounding stops progress, or at the last allowed evaluation, evaluate the best step so far.
    if ((brackt_ && (stp_ <= stmin_ || stp_ >= stmax_)) || (brackt_ && stmax_ - stmin_ <= o_.xtol * stmax_) ||
        nfev_ + 1 >= o_.max_evaluations)
      stp_ = stx_;
    if (stp_ <= 0.0) return fail("no positive step left to try");
    return search_state::evaluate;
  }

 private:
  static constexpr double xtrapl = 1.1;  // smallest extrapolation factor before bracketing
  static constexpr double xtrapu = 4.0;  // largest

  search_state fail(const char* why) {
    failure_ = why;
    return search_state::failed;
  }

  // A trial gave a non-finite value: never go that far again; retry halfway back to the best step.
  search_state shrink() {
    if (nfev_ >= o_.max_evaluations)
      return fail("the line search reached max_evaluations (non-finite values)");
    cap_ = std::min(cap_, stp_);
    const double next = stx_ + 0.5 * (stp_ - stx_);
    if (!(next > stx_) || next < o_.min_step || next == stp_)
      return fail("non-finite values down to the smallest step");
    stp_ = next;
    if (!brackt_) stmax_ = std::min(stmax_, cap_);
    return search_state::evaluate;
  }

  /// The safeguarded step of the paper's section 4: from the best step (stx, fx, dx), the other end of the
  /// interval (sty, fy, dy) and the trial (stp, fp, dp), updates the interval and sets stp to the next trial
  /// within [stmin_, stmax_].
  void next_trial(double& stx, double& fx, double& dx, double& sty, double& fy, double& dy, double& stp,
                  double fp, double dp) {
    const double sgnd = dp * (dx / std::abs(dx));
    double stpf = stp;
    if (fp > fx) {
      // Case 1: a higher value. The minimiser is bracketed; take the cubic step if it is closer to stx than
      // the quadratic one, otherwise their midpoint.
      const double stpc = cubic_minimizer(stx, fx, dx, stp, fp, dp);
      const double stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
      stpf = std::abs(stpc - stx) < std::abs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2.0;
      brackt_ = true;
    } else if (sgnd < 0.0) {
      // Case 2: a lower value and derivatives of opposite signs: bracketed; the step farther from stp of the
      // cubic and the secant.
      const double stpc = cubic_minimizer(stp, fp, dp, stx, fx, dx);
      const double stpq = stp + (dp / (dp - dx)) * (stx - stp);
      stpf = std::abs(stpc - stp) > std::abs(stpq - stp) ? stpc : stpq;
      brackt_ = true;
    } else if (std::abs(dp) < std::abs(dx)) {
      // Case 3: a lower value, same signs, smaller slope. The cubic step is used only if it lies beyond stp
      // (or the cubic tends to infinity in that direction); otherwise the bound on that side.
      const double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
      const double s = std::max({std::abs(theta), std::abs(dx), std::abs(dp)});
      double gamma = s * std::sqrt(std::max(0.0, (theta / s) * (theta / s) - (dx / s) * (dp / s)));
      if (stp > stx) gamma = -gamma;
      const double p = (gamma - dp) + theta;
      const double q = (gamma + (dx - dp)) + gamma;
      const double r = p / q;
      double stpc = 0.0;
      if (r < 0.0 && gamma != 0.0)
        stpc = stp + r * (stx - stp);
      else
        stpc = stp > stx ? stmax_ : stmin_;
      const double stpq = stp + (dp / (dp - dx)) * (stx - stp);
      if (brackt_) {
        stpf = std::abs(stpc - stp) < std::abs(stpq - stp) ? stpc : stpq;
        stpf =
            stp > stx ? std::min(stp + 0.66 * (sty - stp), stpf) : std::max(stp + 0.66 * (sty - stp), stpf);
      } else {
        stpf = std::abs(stpc - stp) > std::abs(stpq - stp) ? stpc : stpq;
        stpf = std::clamp(stpf, std::min(stmin_, stmax_), std::max(stmin_, stmax_));
      }
    } else {
      // Case 4: a lower value, same signs, slope not smaller: the cubic through stp and sty when bracketed,
      // otherwise the bound.
      if (brackt_)
        stpf = cubic_minimizer(stp, fp, dp, sty, fy, dy);
      else
        stpf = stp > stx ? stmax_ : stmin_;
    }
    // The interval of uncertainty.
    if (fp > fx) {
      sty = stp;
      fy = fp;
      dy = dp;
    } else {
      if (sgnd < 0.0) {
        sty = stx;
        fy = fx;
        dy = dx;
      }
      stx = stp;
      fx = fp;
      dx = dp;
    }
    stp = stpf;
  }

  /// The minimiser of the cubic through (u, fu, du) and (v, fv, dv), written from u.
  static double cubic_minimizer(double u, double fu, double du, double v, double fv, double dv) {
    const double theta = 3.0 * (fu - fv) / (v - u) + du + dv;
    const double s = std::max({std::abs(theta), std::abs(du), std::abs(dv)});
    double gamma = s * std::sqrt(std::max(0.0, (theta / s) * (theta / s) - (du / s) * (dv / s)));
    if (v < u) gamma = -gamma;
    const double p = (gamma - du) + theta;
    const double q = ((gamma - du) + gamma) + dv;
    return u + (p / q) * (v - u);
  }

  line_search_options o_;
  double finit_;
  double ginit_;
  double gtest_;
  double stx_ = 0.0;
  double fx_;
  double gx_;
  double sty_ = 0.0;
  double fy_;
  double gy_;
  double stp_ = 0.0;
  double stmin_ = 0.0;
  double stmax_ = 0.0;
  double width_ = 0.0;
  double width1_ = 0.0;
  double cap_ = std::numeric_limits<double>::infinity();
  bool brackt_ = false;
  bool stage1_ = true;
  std::size_t nfev_ = 0;
  const char* failure_ = "";
};

}  // namespace tether::lbfgs
