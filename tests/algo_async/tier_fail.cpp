// Must NOT compile: an asynchronous algorithm on a communicator without the tier it needs (a collective-only
// communicator: no duplicate(), no open_store). Built twice by CTest, with TIER_FAIL_LSGD and with
// TIER_FAIL_EASGD; each build must fail with the static_assert naming the tier's docs section
// (docs/concepts.md#non-blocking-tier, #one-sided-tier).
#include <span>

#include "tether/tether.hpp"

namespace {

/// The collective tier only.
struct collective_only {
  int rank() const { return 0; }
  int size() const { return 1; }
  collective_only& group() { return *this; }
  void barrier() {}
  template <class T>
  void allreduce_sum(std::span<T>) {}
  template <class T>
  tether::request iallreduce_sum(std::span<const T>, std::span<T>) {
    return {};
  }
  template <class T>
  void broadcast(std::span<T>, int) {}
  tether::election min_loc(double s) { return {s, 0}; }
  const tether::comm_counters& counters() const { return c; }
  tether::comm_counters c{};
};
static_assert(tether::communicator<collective_only>);

}  // namespace

int main() {
  collective_only comm;
#if defined(TIER_FAIL_LSGD)
  tether::algo::async_lsgd<collective_only> opt(comm, 4);
#else
  tether::algo::async_easgd<collective_only> opt(comm, 4);
#endif
  return static_cast<int>(opt.size());
}
