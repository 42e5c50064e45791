// The thread team's store through the one-sided tier's interface (tether::shared_store): a store whose shards
// run plain SGD at rate -1 adds what is pushed into it, so concurrent accumulate() calls from 4 workers must
// leave exactly the initial values plus the sum of every push (integers in floats: exact), with no addition
// lost; exchange() reads and adds under each shard's lock (EASGD's round); close() leaves the final values on
// every worker. The handle models tether::shared_store and ps::parameter_store.

#include <tether/algo/downpour.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/ps/concepts.hpp>
#include <tether/ps/team_store.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

using worker = tether::team::worker;
using store_t = tether::ps::team_store<tether::step::sgd, tether::exec::serial, float>;
static_assert(tether::shared_store<store_t, float>);
static_assert(tether::ps::parameter_store<store_t, float>);
static_assert(tether::ps::parameter_store<tether::ps::team_store<tether::step::adagrad, tether::exec::serial, double>,
                                          double>);
constexpr int p = 4;

}  // namespace

TEST_CASE("The team's store as a shared_store: concurrent additions are never lost", "[ps][store]") {
  constexpr std::size_t n = 1000;
  constexpr int pushes = 200;
  for (std::size_t shards : {std::size_t{1}, std::size_t{7}}) {
    INFO("shards = " << shards);
    std::vector<std::vector<float>> closed(p);
    std::vector<std::size_t> sizes(p), shard_counts(p);
    tether::team team(p);
    team.run([&](worker& w) {
      auto store = tether::ps::placement<worker>::open(w, tether::exec::serial{}, tether::step::sgd{}, n,
                                                       {.shards = shards}, -1.0f);
      std::vector<float> x(n);
      for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i);
      store.join(x.data());  // worker 0 initialises the shards from its x (0, 1, ..., n-1)
      std::vector<float> in(n);
      for (int k = 0; k < pushes; ++k) {
        for (std::size_t i = 0; i < n; ++i) in[i] = static_cast<float>((w.rank() + 1) * ((i + k) % 5));
        store.accumulate(in);
      }
      store.close(x);
      closed[static_cast<std::size_t>(w.rank())] = x;
      sizes[static_cast<std::size_t>(w.rank())] = store.size();
      shard_counts[static_cast<std::size_t>(w.rank())] = store.layout().shards();
    });
    std::vector<float> expect(n);
    for (std::size_t i = 0; i < n; ++i) {
      double v = static_cast<double>(i);
      for (int r = 0; r < p; ++r)
        for (int k = 0; k < pushes; ++k) v += static_cast<double>((r + 1) * ((i + static_cast<std::size_t>(k)) % 5));
      expect[i] = static_cast<float>(v);
    }
    for (int r = 0; r < p; ++r) {
      INFO("worker " << r);
      CHECK(closed[static_cast<std::size_t>(r)] == expect);
      CHECK(sizes[static_cast<std::size_t>(r)] == n);
      CHECK(shard_counts[static_cast<std::size_t>(r)] == shards);
    }
  }
}

TEST_CASE("The team's store: exchange reads and adds under each shard's lock", "[ps][store]") {
  // Every exchange reads the shard, and adds 1 to every value it read (delta computed from the read values:
  // delta = (read + 1) - read). Under the lock, an exchange's read of a shard is exactly the count of exchanges
  // applied to it before, so each worker sees strictly increasing reads of every shard and the final value
  // counts every exchange.
  constexpr std::size_t n = 64;
  constexpr int exchanges = 300;
  std::vector<int> increasing(p, 1);  // not vector<bool>: workers write their own slots
  std::vector<float> final_x(n);
  tether::team team(p);
  team.run([&](worker& w) {
    auto store = tether::ps::placement<worker>::open(w, tether::exec::serial{}, tether::step::sgd{}, n,
                                                     {.shards = 5}, -1.0f);
    std::vector<float> x(n, 0.0f), read(n), delta(n);
    store.join(x.data());
    float first_last = -1.0f;  // the last value read from the first shard, and from the last shard
    float last_last = -1.0f;
    for (int k = 0; k < exchanges; ++k) {
      store.exchange(read, delta, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) delta[i] = (read[i] + 1.0f) - read[i];
      });
      if (!(read[0] > first_last && read[n - 1] > last_last)) increasing[static_cast<std::size_t>(w.rank())] = 0;
      first_last = read[0];
      last_last = read[n - 1];
    }
    store.close(x);
    if (w.rank() == 0) final_x = x;
  });
  for (int r = 0; r < p; ++r) CHECK(increasing[static_cast<std::size_t>(r)] == 1);
  CHECK(final_x == std::vector<float>(n, static_cast<float>(p * exchanges)));
}
