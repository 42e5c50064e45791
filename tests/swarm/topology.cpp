// comm::topology: each built-in graph against its definition written out here (edge by edge), the random
// r-regular graph's degrees, connectivity and seeding, and the validation errors that name the node.
#include <catch2/catch.hpp>

#include <tether/comm/topology.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

using tether::comm::topology;

namespace {

/// The edges {i, j} (i < j) of a graph.
std::set<std::pair<int, int>> edges_of(const topology& g) {
  std::set<std::pair<int, int>> e;
  for (int i = 0; i < g.size(); ++i)
    for (int j : g.neighbours(i)) e.insert({std::min(i, j), std::max(i, j)});
  return e;
}

/// Edges from a rule i -> candidates, dropping self-loops.
template <class F>
std::set<std::pair<int, int>> edges_by_rule(int p, F rule) {
  std::set<std::pair<int, int>> e;
  for (int i = 0; i < p; ++i)
    for (int j : rule(i))
      if (j != i) e.insert({std::min(i, j), std::max(i, j)});
  return e;
}

bool connected(const topology& g) {
  std::vector<int> seen(static_cast<std::size_t>(g.size()), 0), stack{0};
  seen[0] = 1;
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    for (int j : g.neighbours(i))
      if (!seen[static_cast<std::size_t>(j)]) seen[static_cast<std::size_t>(j)] = 1, stack.push_back(j);
  }
  return std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; });
}

}  // namespace

TEST_CASE("topology: ring, torus, hypercube, complete and exponential match their definitions", "[swarm]") {
  for (int p : {1, 2, 3, 4, 5, 8, 13, 16}) {
    INFO("p = " << p);
    CHECK(edges_of(topology::ring(p)) == edges_by_rule(p, [p](int i) { return std::vector{(i + 1) % p, (i + p - 1) % p}; }));
    CHECK(edges_of(topology::complete(p)).size() == static_cast<std::size_t>(p * (p - 1) / 2));
    CHECK(edges_of(topology::exponential(p)) == edges_by_rule(p, [p](int i) {
            std::vector<int> v;
            for (int d = 1; d < p; d *= 2) v.push_back((i + d) % p), v.push_back(((i - d) % p + p) % p);
            return v;
          }));
    if ((p & (p - 1)) == 0) {
      const auto h = topology::hypercube(p);
      CHECK(edges_of(h) == edges_by_rule(p, [p](int i) {
              std::vector<int> v;
              for (int b = 1; b < p; b *= 2) v.push_back(i ^ b);
              return v;
            }));
      for (int i = 0; i < p; ++i) CHECK(h.degree(i) == std::countr_zero(static_cast<unsigned>(p)));
    }
  }
  // Torus 3 x 4: node r*4 + c talks to (r +- 1 mod 3, c) and (r, c +- 1 mod 4).
  const auto t = topology::torus(3, 4);
  CHECK(edges_of(t) == edges_by_rule(12, [](int i) {
          const int r = i / 4, c = i % 4;
          return std::vector{((r + 1) % 3) * 4 + c, ((r + 2) % 3) * 4 + c, r * 4 + (c + 1) % 4, r * 4 + (c + 3) % 4};
        }));
  for (int i = 0; i < 12; ++i) CHECK(t.degree(i) == 4);
  CHECK(topology::torus(16) == topology::torus(4, 4));
  CHECK(topology::torus(8) == topology::torus(2, 4));
  CHECK(topology::torus(7) == topology::ring(7));  // a prime: one row
  CHECK(topology::ring(8).neighbours(0)[0] == 1);
  CHECK(topology::ring(8).neighbours(0)[1] == 7);
  CHECK(topology::ring(8).adjacent(3, 4));
  CHECK_FALSE(topology::ring(8).adjacent(3, 5));
}

TEST_CASE("topology: random r-regular graphs are r-regular, simple, connected and fixed by their seed", "[swarm]") {
  for (auto [p, r] : {std::pair{4, 2}, {8, 3}, {16, 4}, {16, 2}, {30, 5}, {64, 8}, {2, 1}}) {
    INFO("p = " << p << ", r = " << r);
    const auto g = topology::random_regular(p, r, 7);
    CHECK(g.size() == p);
    for (int i = 0; i < p; ++i) CHECK(g.degree(i) == r);
    CHECK(connected(g));
    CHECK(g == topology::random_regular(p, r, 7));
    CHECK(g.fingerprint() == topology::random_regular(p, r, 7).fingerprint());
  }
  // Different seeds give different graphs (for graphs with many r-regular choices).
  CHECK_FALSE(topology::random_regular(32, 4, 1) == topology::random_regular(32, 4, 2));
  CHECK(topology::random_regular(32, 4, 1).fingerprint() != topology::random_regular(32, 4, 2).fingerprint());
}

TEST_CASE("topology: a user's adjacency lists are validated, errors name the node", "[swarm][bad_input]") {
  const auto fails = [](std::vector<std::vector<int>> a, const std::string& text) {
    INFO(text);
    CHECK_THROWS_WITH(topology(std::move(a), "mine"), Catch::Contains(text));
  };
  fails({{1}, {0, 3}, {1}}, "node 1 lists neighbour 3, outside [0, 3)");
  fails({{1}, {0, -1}}, "node 1 lists neighbour -1");
  fails({{0, 1}, {0}}, "node 0 lists itself as a neighbour (self-loop)");
  fails({{1, 1}, {0}}, "node 0 lists neighbour 1 twice");
  fails({{1, 2}, {0}, {1}}, "node 0 lists 2 but node 2 does not list 0 (the graph must be symmetric)");
  fails({{1}, {0}, {3}, {2}}, "node 2 is not reachable from node 0 (the graph must be connected; 2 of 4 nodes reached)");
  // (a degree above size - 1 always repeats a neighbour, lists itself or leaves the range: caught first)
  CHECK_THROWS_AS(topology({{1}, {0, 3}, {1}}), tether::error);
  const topology ok({{2, 1}, {0, 2}, {1, 0}}, "triangle");
  CHECK(ok == topology::complete(3));
  CHECK(ok.name() == "triangle");
  CHECK(ok.neighbours(0)[0] == 1);  // kept sorted
  CHECK_THROWS_WITH(ok.neighbours(3), Catch::Contains("node must be in [0, 3), got node = 3"));
}

TEST_CASE("topology: the built-in graphs refuse sizes they cannot have", "[swarm][bad_input]") {
  CHECK_THROWS_WITH(topology::ring(0), Catch::Contains("topology ring: p must be in [1, "));
  CHECK_THROWS_WITH(topology::hypercube(6), Catch::Contains("topology hypercube: p must be a power of two, got p = 6"));
  CHECK_THROWS_WITH(topology::torus(0, 3), Catch::Contains("rows and cols must be >= 1, got rows = 0, cols = 3"));
  CHECK_THROWS_WITH(topology::random_regular(5, 3, 1), Catch::Contains("p * r must be even, got p = 5, r = 3"));
  CHECK_THROWS_WITH(topology::random_regular(4, 4, 1), Catch::Contains("r must be in [1, p - 1] = [1, 3], got r = 4"));
  CHECK_THROWS_WITH(topology::random_regular(6, 1, 1), Catch::Contains("connected only for p = 2, got p = 6"));
  CHECK(topology::parse_kind("exponential") == tether::comm::graph_kind::exponential);
  CHECK_FALSE(topology::parse_kind("star").has_value());
}
