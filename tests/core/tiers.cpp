// The communicator tiers (core/concepts.hpp, docs/concepts.md#communicator-tiers): which of tether's
// communicators model which tier today (comm::mpi's are checked in tests/mpi/store.cpp), and that a
// communicator without the members does not.

#include <span>

#include "support.hpp"

namespace {

/// A collective-only communicator (the docs' skeleton, reduced): no duplicate(), so no higher tier.
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

}  // namespace

TEST_CASE("communicator tiers: the thread team is collective, non-blocking and one-sided", "[core]") {
  using w = tether::team::worker;
  STATIC_REQUIRE(tether::communicator<w>);
  STATIC_REQUIRE(tether::nonblocking_communicator<w, float>);
  STATIC_REQUIRE(tether::nonblocking_communicator<w, double>);
  STATIC_REQUIRE(std::same_as<tether::channel_t<w>, w>);
  STATIC_REQUIRE(tether::one_sided_communicator<w, float>);
  STATIC_REQUIRE(tether::one_sided_communicator<w, double>);
  STATIC_REQUIRE(tether::shared_store<tether::team::store<float>, float>);
}

TEST_CASE("communicator tiers: a collective-only communicator has no higher tier", "[core]") {
  STATIC_REQUIRE(tether::communicator<collective_only>);
  STATIC_REQUIRE_FALSE(tether::nonblocking_communicator<collective_only>);
  STATIC_REQUIRE_FALSE(tether::one_sided_communicator<collective_only>);
  STATIC_REQUIRE_FALSE(tether::pairwise_communicator<collective_only>);
}
