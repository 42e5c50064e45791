#pragma once
// The bookkeeping of the pairwise-link tests (thread team and MPI): every message carries who sent it and why,
// every worker records what it started, what it got back and what it served, and `audit` checks afterwards,
// against these records only, that every exchange was counted on both sides: an answered exchange was served
// exactly once by its peer (with the reply it got) or met the peer's own exchange (a crossing, seen the same way
// by both), and a lost exchange left no trace at the peer.
//
// Worker threads only record; the checks run on the test's thread after the run.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace link_check {

/// A message: a request (kind 1: sender and its exchange number) or a reply (kind 2: server and its serve number).
struct message {
  std::int32_t kind = 0;
  std::int32_t sender = -1;
  std::uint64_t number = 0;
};
inline constexpr std::size_t message_bytes = sizeof(message);

inline void write(std::span<std::byte> out, message m) { std::memcpy(out.data(), &m, sizeof m); }
inline message read(std::span<const std::byte> in) {
  message m;
  std::memcpy(&m, in.data(), sizeof m);
  return m;
}

/// An exchange a worker started, and how it ended.
struct started {
  int peer = -1;
  std::uint64_t number = 0;
  bool done = false;
  message got{};
};
/// A request a worker served.
struct served {
  int from = -1;
  std::uint64_t number = 0;  // the initiator's exchange number
  std::uint64_t reply = 0;   // the serve number given back
};

/// One worker's records.
struct log {
  std::vector<started> out;
  std::vector<served> in;
};

/// Checks the logs of every worker against each other; returns the failures (empty when all is consistent) and
/// counts the answered exchanges, crossings and losses.
struct audit_result {
  std::vector<std::string> failures;
  std::size_t done = 0, crossed = 0, lost = 0, served = 0;
};

inline audit_result audit(const std::vector<log>& logs) {
  audit_result a;
  const auto fail = [&](auto&&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    a.failures.push_back(os.str());
  };
  // (server, initiator, number) -> reply number, and how often it was served.
  std::map<std::tuple<int, int, std::uint64_t>, std::pair<std::uint64_t, int>> served_by;
  // (initiator, number) -> its record.
  std::map<std::pair<int, std::uint64_t>, const started*> starts;
  for (std::size_t w = 0; w < logs.size(); ++w) {
    for (const auto& s : logs[w].in) {
      auto& e = served_by[{static_cast<int>(w), s.from, s.number}];
      e.first = s.reply;
      ++e.second;
      ++a.served;
    }
    for (const auto& s : logs[w].out) starts[{static_cast<int>(w), s.number}] = &s;
  }
  for (std::size_t w = 0; w < logs.size(); ++w) {
    const int me = static_cast<int>(w);
    for (const auto& s : logs[w].out) {
      const auto it = served_by.find({s.peer, me, s.number});
      const int times = it == served_by.end() ? 0 : it->second.second;
      if (!s.done) {
        ++a.lost;
        if (times != 0) fail("worker ", me, " exchange ", s.number, " with ", s.peer, " lost but served ", times, " time(s)");
        continue;
      }
      ++a.done;
      if (s.got.kind == 2) {
        if (s.got.sender != s.peer) fail("worker ", me, " exchange ", s.number, ": reply from ", s.got.sender, ", peer ", s.peer);
        if (times != 1) fail("worker ", me, " exchange ", s.number, " with ", s.peer, " answered but served ", times, " time(s)");
        else if (it->second.first != s.got.number)
          fail("worker ", me, " exchange ", s.number, ": got serve number ", s.got.number, ", peer recorded ", it->second.first);
      } else if (s.got.kind == 1) {
        ++a.crossed;
        if (times != 0) fail("worker ", me, " exchange ", s.number, " crossed but also served");
        if (s.got.sender != s.peer) fail("worker ", me, " exchange ", s.number, ": crossing with ", s.got.sender, ", peer ", s.peer);
        const auto o = starts.find({s.peer, s.got.number});
        if (o == starts.end()) {
          fail("worker ", me, " exchange ", s.number, ": crossing with an exchange ", s.got.number, " that ", s.peer, " never started");
        } else {
          const started& t = *o->second;
          if (!t.done || t.peer != me || t.got.kind != 1 || t.got.sender != me || t.got.number != s.number)
            fail("worker ", me, " exchange ", s.number, ": the crossing is not mirrored by ", s.peer, "'s exchange ", t.number);
        }
      } else {
        fail("worker ", me, " exchange ", s.number, ": done with an unwritten reply (kind ", s.got.kind, ")");
      }
    }
  }
  // Every serve answers an exchange its initiator saw answered.
  for (const auto& [key, v] : served_by) {
    const auto& [server, from, number] = key;
    const auto o = starts.find({from, number});
    if (o == starts.end() || !o->second->done || o->second->got.kind != 2 || o->second->peer != server)
      fail("worker ", server, " served exchange ", number, " of ", from, ", which its initiator does not show answered by ", server);
  }
  return a;
}

}  // namespace link_check
