#pragma once
/// \file
/// Results of collectives: an election's winner and the handle of a non-blocking operation.

#include <functional>
#include <utility>

namespace tether {

/// The outcome of a (score, rank) min-reduction. `rank` is -1 when no worker had a finite score. The score
/// is a double, so an election keeps the order of every finite double loss (a float would turn -1e39 into
/// -inf, which never wins, and merge losses closer than float's precision).
struct election {
  double score = 0.0;
  int rank = -1;
};

/// Handle of a non-blocking collective. `wait()` completes it (and rethrows its failure); a request that is
/// destroyed while active waits first, so the buffers it names stay valid until the operation is over.
class request {
 public:
  request() = default;
  request(std::function<void()> wait, std::function<bool()> test) : wait_(std::move(wait)), test_(std::move(test)) {}
  request(request&& o) noexcept : wait_(std::exchange(o.wait_, {})), test_(std::exchange(o.test_, {})) {}
  request& operator=(request&& o) noexcept {
    if (this != &o) {
      quiet_wait();
      wait_ = std::exchange(o.wait_, {});
      test_ = std::exchange(o.test_, {});
    }
    return *this;
  }
  request(const request&) = delete;
  request& operator=(const request&) = delete;
  ~request() { quiet_wait(); }

  /// True until the operation has been waited for.
  [[nodiscard]] bool active() const noexcept { return static_cast<bool>(wait_); }
  /// Blocks until the operation is complete. Throws if it failed (a worker aborted, sizes differed).
  void wait() {
    if (!wait_) return;
    auto w = std::exchange(wait_, {});
    test_ = {};
    w();
  }
  /// True when the operation has completed (wait() will not block).
  [[nodiscard]] bool test() const { return !test_ || test_(); }

 private:
  void quiet_wait() noexcept {
    try {
      wait();
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; the failure was reported elsewhere
    }
  }
  std::function<void()> wait_;
  std::function<bool()> test_;
};

}  // namespace tether
