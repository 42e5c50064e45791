// The thread team's pairwise link (comm/team/pairwise.hpp): exchanges, crossings, swaps, the serving barrier and
// finish, lost peers (closed, throwing, stalled past the timeout), bad input, and a stress run of 16 threads with
// random delays whose every exchange is audited on both sides (link_check.hpp).
#include <catch2/catch.hpp>

#include <tether/comm/shared_memory.hpp>
#include <tether/comm/team/pairwise.hpp>
#include <tether/core/rng.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "link_check.hpp"

namespace {

using link_check::message;
using link_check::message_bytes;

/// A worker's side of the audited protocol: a serve callback that records and numbers its replies, and an
/// exchange that records what it started and got.
struct audited {
  link_check::log log;
  int rank = 0;
  std::uint64_t next = 0;
  std::uint64_t replies = 0;
  std::array<std::byte, message_bytes> send{}, recv{};

  auto serve() {
    return [this](int from, std::span<const std::byte> msg, std::span<std::byte> reply) {
      const message m = link_check::read(msg);
      log.in.push_back({from, m.number, ++replies});
      link_check::write(reply, {2, rank, replies});
    };
  }
  template <class Link>
  tether::pair_status exchange(Link& l, int peer) {
    const std::uint64_t n = ++next;
    link_check::write(send, {1, rank, n});
    recv.fill(std::byte{0});
    const auto st = l.exchange(peer, send, recv, serve());
    log.out.push_back({peer, n, st == tether::pair_status::done, link_check::read(recv)});
    return st;
  }
};

void require_consistent(const std::vector<link_check::log>& logs, link_check::audit_result* out = nullptr) {
  const auto a = link_check::audit(logs);
  for (const auto& f : a.failures) FAIL_CHECK(f);
  REQUIRE(a.failures.empty());
  REQUIRE(a.done == a.served + a.crossed);
  if (out) *out = a;
}

}  // namespace

TEST_CASE("team link: the team's worker models the pairwise tier", "[swarm]") {
  STATIC_REQUIRE(tether::pairwise_communicator<tether::team::worker>);
  STATIC_REQUIRE(tether::pairwise_link<tether::comm::team_pairs>);
}

TEST_CASE("team link: two workers exchange messages, both ends answer", "[swarm]") {
  tether::team team(2);
  std::vector<link_check::log> logs(2);
  std::vector<tether::comm::pair_counters> ctr(2);
  std::vector<std::uint64_t> bytes_sent(2), bytes_received(2);
  team.run([&](tether::team::worker& w) {
    auto link = w.open_pairs(message_bytes, {.timeout = 30});
    audited a;
    a.rank = w.rank();
    if (w.rank() == 0)
      for (int k = 0; k < 50; ++k) a.exchange(link, 1);
    link.finish(a.serve());
    logs[static_cast<std::size_t>(w.rank())] = a.log;
    ctr[static_cast<std::size_t>(w.rank())] = link.counters();
    bytes_sent[static_cast<std::size_t>(w.rank())] = w.counters().bytes_sent;
    bytes_received[static_cast<std::size_t>(w.rank())] = w.counters().bytes_received;
  });
  link_check::audit_result a;
  require_consistent(logs, &a);
  CHECK(a.done == 50);
  CHECK(a.served == 50);
  CHECK(ctr[0].started == 50);
  CHECK(ctr[0].done == 50);
  CHECK(ctr[1].served == 50);
  // Each exchange moves one message each way, counted on both workers.
  for (int r = 0; r < 2; ++r) {
    CHECK(bytes_sent[static_cast<std::size_t>(r)] == 50 * message_bytes);
    CHECK(bytes_received[static_cast<std::size_t>(r)] == 50 * message_bytes);
  }
}

TEST_CASE("team link: two workers that start toward each other meet (a crossing), no deadlock", "[swarm]") {
  // Both start (non-blocking) before either waits: the second to start takes the first's request as its answer.
  for (int trial = 0; trial < 20; ++trial) {
    tether::team team(2);
    std::vector<link_check::log> logs(2);
    team.run([&](tether::team::worker& w) {
      auto link = w.open_pairs(message_bytes, {.timeout = 30});
      audited a;
      a.rank = w.rank();
      for (int k = 0; k < 20; ++k) a.exchange(link, 1 - w.rank());
      link.finish(a.serve());
      logs[static_cast<std::size_t>(w.rank())] = a.log;
    });
    require_consistent(logs);
  }
}

TEST_CASE("team link: a cycle of workers each waiting on the next completes", "[swarm]") {
  tether::team team(5);
  std::vector<link_check::log> logs(5);
  team.run([&](tether::team::worker& w) {
    auto link = w.open_pairs(message_bytes, {.timeout = 30});
    audited a;
    a.rank = w.rank();
    for (int k = 0; k < 100; ++k) a.exchange(link, (w.rank() + 1) % 5);
    link.finish(a.serve());
    logs[static_cast<std::size_t>(w.rank())] = a.log;
  });
  link_check::audit_result a;
  require_consistent(logs, &a);
  CHECK(a.done == 500);
  CHECK(a.lost == 0);
}

TEST_CASE("team link: stress, 16 threads, random peers and delays, every exchange counted on both sides",
          "[swarm][stress]") {
  constexpr int p = 16;
  constexpr int per_worker = 400;
  tether::team team(p);
  std::vector<link_check::log> logs(p);
  team.run([&](tether::team::worker& w) {
    auto link = w.open_pairs(message_bytes, {.timeout = 60});
    audited a;
    a.rank = w.rank();
    tether::rng gen(tether::derive_seed(99, static_cast<std::uint64_t>(w.rank())));
    for (int k = 0; k < per_worker; ++k) {
      int peer = static_cast<int>(gen.below(p - 1));
      if (peer >= w.rank()) ++peer;
      const auto pause = gen.below(4);
      if (pause == 0) std::this_thread::sleep_for(std::chrono::microseconds(gen.below(300)));
      if (pause == 1) link.poll(a.serve());
      if (pause == 2) std::this_thread::yield();
      a.exchange(link, peer);
    }
    link.finish(a.serve());
    logs[static_cast<std::size_t>(w.rank())] = a.log;
  });
  link_check::audit_result a;
  require_consistent(logs, &a);
  CHECK(a.done + a.lost == static_cast<std::size_t>(p * per_worker));
  CHECK(a.lost == 0);  // nobody stalls for the 60 s timeout
}

TEST_CASE("team link: non-blocking start/test, the initiator works while its exchange is in flight", "[swarm]") {
  tether::team team(3);
  std::vector<link_check::log> logs(3);
  std::vector<int> polls(3);
  team.run([&](tether::team::worker& w) {
    auto link = w.open_pairs(message_bytes, {.timeout = 30});
    audited a;
    a.rank = w.rank();
    for (int k = 0; k < 60; ++k) {
      const int peer = (w.rank() + 1 + k % 2) % 3;
      const std::uint64_t n = ++a.next;
      link_check::write(a.send, {1, a.rank, n});
      a.recv.fill(std::byte{0});
      auto st = link.start(peer, a.send, a.recv);
      while (!st) {
        ++polls[static_cast<std::size_t>(w.rank())];  // "local steps" while the exchange is in flight
        st = link.test(a.serve());
      }
      a.log.out.push_back({peer, n, *st == tether::pair_status::done, link_check::read(a.recv)});
    }
    link.finish(a.serve());
    logs[static_cast<std::size_t>(w.rank())] = a.log;
  });
  link_check::audit_result a;
  require_consistent(logs, &a);
  CHECK(a.done == 180);
}

TEST_CASE("team link: agreed swaps give each end the other's message", "[swarm]") {
  tether::team team(4);
  std::vector<std::vector<int>> got(4);
  team.run([&](tether::team::worker& w) {
    auto link = w.open_pairs(sizeof(int), {.timeout = 30});
    // Rounds of a fixed pairing: (0,1)(2,3), (0,2)(1,3), (0,3)(1,2).
    const int partner[3][4] = {{1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}};
    for (int round = 0; round < 30; ++round) {
      const int peer = partner[round % 3][w.rank()];
      const int mine = 100 * w.rank() + round;
      int theirs = -1;
      const auto st = link.swap(peer, std::as_bytes(std::span(&mine, 1)), std::as_writable_bytes(std::span(&theirs, 1)));
      got[static_cast<std::size_t>(w.rank())].push_back(st == tether::pair_status::done ? theirs : -2);
    }
    link.finish([](int, std::span<const std::byte>, std::span<std::byte>) {});
  });
  const int partner[3][4] = {{1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}};
  for (int r = 0; r < 4; ++r)
    for (int round = 0; round < 30; ++round)
      CHECK(got[static_cast<std::size_t>(r)][static_cast<std::size_t>(round)] == 100 * partner[round % 3][r] + round);
}

TEST_CASE("team link: sync is a barrier that keeps serving", "[swarm]") {
  // Worker 0 reaches sync at once; the others exchange with it (it serves from inside sync) before they sync.
  tether::team team(4);
  std::vector<link_check::log> logs(4);
  std::vector<int> after(4, -1);
  std::atomic<int> passed{0};
  team.run([&](tether::team::worker& w) {
    auto link = w.open_pairs(message_bytes, {.timeout = 30});
    audited a;
    a.rank = w.rank();
    if (w.rank() != 0)
      for (int k = 0; k < 30; ++k) a.exchange(link, 0);
    link.sync(a.serve());
    after[static_cast<std::size_t>(w.rank())] = passed.fetch_add(1);
    link.finish(a.serve());
    logs[static_cast<std::size_t>(w.rank())] = a.log;
  });
  link_check::audit_result a;
  require_consistent(logs, &a);
  CHECK(a.done == 90);
  CHECK(a.served == 90);  // all served by worker 0 while it waited in sync
  for (int r = 0; r < 4; ++r) CHECK(after[static_cast<std::size_t>(r)] >= 0);
}

TEST_CASE("team link: sync does not serve an exchange started after its initiator passed", "[swarm]") {
  // Worker 0 exchanges with 1, syncs, and at once starts its next exchange; worker 1, in sync all along, must leave
  // sync having served only the first: the second belongs to the next phase (served at 1's next poll). Before the
  // fix, a worker that had not yet seen everybody arrive served whatever was waiting, the next phase's too.
  int wrong = 0;
  for (int trial = 0; trial < 200; ++trial) {
    tether::team team(2);
    std::vector<std::uint64_t> served_in_sync(2);
    team.run([&](tether::team::worker& w) {
      auto link = w.open_pairs(message_bytes, {.timeout = 30});
      audited a;
      a.rank = w.rank();
      if (w.rank() == 0) {
        a.exchange(link, 1);
        link.sync(a.serve());
        a.exchange(link, 1);
      } else {
        link.sync(a.serve());
        served_in_sync[1] = link.counters().served;
      }
      link.finish(a.serve());
    });
    wrong += served_in_sync[1] != 1;
  }
  CHECK(wrong == 0);
}

TEST_CASE("team link: a worker that throws is lost to the others, who finish", "[swarm][fault]") {
  constexpr int p = 4;
  tether::team team(p);
  std::vector<link_check::log> logs(p);
  std::vector<int> finished(p, 0);
  std::vector<int> lost_to_two(p, 0);
  CHECK_THROWS_WITH(team.run([&](tether::team::worker& w) {
                      auto link = w.open_pairs(message_bytes, {.timeout = 30});
                      audited a;
                      a.rank = w.rank();
                      const auto r = static_cast<std::size_t>(w.rank());
                      // Each keeps exchanging until it has seen worker 2 lost (bounded), 2 throws after 20.
                      for (int k = 0; k < 5000 && (k < 60 || (w.rank() != 2 && lost_to_two[r] == 0)); ++k) {
                        if (w.rank() == 2 && k == 20) {
                          logs[r] = a.log;
                          throw std::runtime_error("worker 2 fails");
                        }
                        const int peer = (w.rank() + 1 + k % (p - 1)) % p;
                        if (a.exchange(link, peer) == tether::pair_status::lost && peer == 2) ++lost_to_two[r];
                      }
                      link.finish(a.serve());
                      logs[r] = a.log;
                      finished[r] = 1;
                    }),
                    "worker 2 fails");
  for (int r : {0, 1, 3}) {
    CHECK(finished[static_cast<std::size_t>(r)] == 1);
    CHECK(lost_to_two[static_cast<std::size_t>(r)] > 0);
  }
  require_consistent(logs);
}

TEST_CASE("team link: a worker stalled past the timeout is lost, nothing applied, and may come back", "[swarm][fault]") {
  constexpr int p = 3;
  tether::team team(p);
  std::vector<link_check::log> logs(p);
  std::vector<tether::comm::pair_counters> ctr(p);
  team.run([&](tether::team::worker& w) {
    auto link = w.open_pairs(message_bytes, {.timeout = 0.2});
    audited a;
    a.rank = w.rank();
    if (w.rank() == 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(800));  // stalled: serves nobody
      for (int k = 0; k < 10; ++k) a.exchange(link, k % 2);          // back: the others serve it
    } else {
      // Exchange with 2 until it timed out at least once and then answered three times (bounded).
      int lost = 0, answered_after = 0;
      for (int k = 0; k < 2000 && answered_after < 3; ++k) {
        if (a.exchange(link, 2) == tether::pair_status::lost) ++lost;
        else if (lost > 0) ++answered_after;
      }
    }
    link.finish(a.serve());
    logs[static_cast<std::size_t>(w.rank())] = a.log;
    ctr[static_cast<std::size_t>(w.rank())] = link.counters();
  });
  link_check::audit_result a;
  require_consistent(logs, &a);
  CHECK(ctr[0].lost > 0);    // the exchanges with the stalled worker timed out: nothing applied (audited)
  CHECK(ctr[1].lost > 0);
  CHECK(ctr[2].done == 10);  // the others (stepping, or serving in finish) answered the returning worker
}

TEST_CASE("team link: a serve that throws refuses the request (initiator: lost) and the error reaches its worker",
          "[swarm][fault]") {
  tether::team team(2);
  std::vector<int> status(2, -1);
  std::string error;
  try {
    team.run([&](tether::team::worker& w) {
      auto link = w.open_pairs(8, {.timeout = 30});
      std::array<std::byte, 8> s{}, r{};
      if (w.rank() == 0) {
        status[0] = static_cast<int>(link.exchange(1, s, r, [](int, auto, auto) {}));
        link.finish([](int, auto, auto) {});
      } else {
        for (;;) link.poll([](int from, std::span<const std::byte>, std::span<std::byte>) {
          throw tether::runtime_error("cannot decode the message of peer " + std::to_string(from));
        });
      }
    });
  } catch (const tether::runtime_error& e) {
    error = e.what();
  }
  CHECK(status[0] == static_cast<int>(tether::pair_status::lost));
  CHECK(error == "cannot decode the message of peer 0");
}

TEST_CASE("team link: bad input is a tether::error naming the argument", "[swarm][bad_input]") {
  tether::team team(2);
  team.run([&](tether::team::worker& w) {
    // A bad option throws on the worker that gave it, before the collective: both give it here.
    bool threw = false;
    try {
      (void)w.open_pairs(8, {.timeout = 0});
    } catch (const tether::error& e) {
      threw = std::string(e.what()).find("timeout") != std::string::npos;
    }
    if (!threw) throw std::logic_error("timeout = 0 accepted");
  });
  std::vector<std::string> errors(2);
  team.run([&](tether::team::worker& w) {
    auto link = w.open_pairs(8);
    std::array<std::byte, 8> s{}, r{};
    std::array<std::byte, 9> big{};
    const auto none = [](int, auto, auto) {};
    std::string e;
    for (auto f : std::initializer_list<std::function<void()>>{
             [&] { (void)link.exchange(w.rank(), s, r, none); }, [&] { (void)link.exchange(2, s, r, none); },
             [&] { (void)link.exchange(-1, s, r, none); }, [&] { (void)link.exchange(1 - w.rank(), big, r, none); }}) {
      try {
        f();
        e += "accepted;";
      } catch (const tether::error& x) {
        e += std::string(x.what()) + ";";
      }
    }
    errors[static_cast<std::size_t>(w.rank())] = e;
    link.finish(none);
  });
  for (const auto& e : errors) {
    CHECK_THAT(e, Catch::Contains("peer must be another worker in [0, 2), got peer = 0") ||
                      Catch::Contains("got peer = 1"));
    CHECK_THAT(e, Catch::Contains("got peer = 2"));
    CHECK_THAT(e, Catch::Contains("got peer = -1"));
    CHECK_THAT(e, Catch::Contains("has 9 bytes, more than the link's 8-byte messages"));
    CHECK_THAT(e, !Catch::Contains("accepted"));
  }
}
