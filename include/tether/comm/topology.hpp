#pragma once
/// \file
/// comm::topology: an undirected communication graph over the p nodes of a swarm (who may exchange with whom),
/// as a value apart from any exchange. Built-in graphs (ring, 2-D torus, hypercube, complete, seeded random
/// r-regular, exponential) and a user's own adjacency lists; every graph is validated at construction
/// (neighbours in range, no self-loop, no repeated neighbour, symmetric, connected) with a tether::error that
/// names the node. See docs/algorithms/swarm_sgd.md#topologies.
///
///     auto g = tether::comm::topology::ring(8);            // node i talks to i-1 and i+1 (mod 8)
///     auto h = tether::comm::topology::random_regular(16, 4, /*seed=*/7);
///     for (int j : g.neighbours(3)) ...                     // 2 and 4

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tether/core/error.hpp"
#include "tether/core/rng.hpp"

namespace tether::comm {

/// The built-in graph families, by name (the demo's `--topology`).
enum class graph_kind {
  ring,            ///< i - 1 and i + 1 (mod p)
  torus,           ///< a rows x cols grid with wrap-around (rows: the largest divisor of p <= sqrt(p))
  hypercube,       ///< i xor 2^k (p a power of two)
  complete,        ///< every other node
  random_regular,  ///< a seeded random r-regular graph
  exponential,     ///< i +- 2^k (mod p) for every 2^k < p
};

/// An undirected, connected graph over nodes 0..size()-1, without self-loops or repeated edges.
class topology {
 public:
  /// The empty graph (size 0): "no graph chosen". An algorithm given it picks its own default.
  topology() noexcept = default;

  /// A user's graph: `adjacency[i]` lists node i's neighbours. Validated (tether::error naming the node):
  /// every neighbour in [0, size), no node lists itself or a neighbour twice, j lists i whenever i lists j,
  /// every node reachable from node 0. Neighbour lists are kept sorted.
  explicit topology(std::vector<std::vector<int>> adjacency, std::string name = "custom")
      : adj_(std::move(adjacency)), name_(std::move(name)) {
    validate();
  }

  /// Ring: node i's neighbours are i - 1 and i + 1 (mod p). p = 2 gives one edge; p = 1 a single node.
  [[nodiscard]] static topology ring(int p) {
    check_size("ring", p);
    std::vector<std::vector<int>> a(static_cast<std::size_t>(p));
    for (int i = 0; i < p; ++i) {
      add_unique(a, i, (i + 1) % p);
      add_unique(a, i, (i + p - 1) % p);
    }
    return topology(std::move(a), "ring");
  }

  /// 2-D torus of rows x cols nodes (node r*cols + c): up, down, left, right with wrap-around. A side of 1 or 2
  /// gives fewer than four distinct neighbours.
  [[nodiscard]] static topology torus(int rows, int cols) {
    tether::detail::require(rows >= 1 && cols >= 1, "topology torus: rows and cols must be >= 1, got rows = ",
                            rows, ", cols = ", cols);
    tether::detail::require(static_cast<long long>(rows) * cols <= max_nodes, "topology torus: rows * cols = ",
                            static_cast<long long>(rows) * cols, " nodes, more than ", max_nodes);
    const int p = rows * cols;
    std::vector<std::vector<int>> a(static_cast<std::size_t>(p));
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) {
        const int i = r * cols + c;
        add_unique(a, i, ((r + 1) % rows) * cols + c);
        add_unique(a, i, ((r + rows - 1) % rows) * cols + c);
        add_unique(a, i, r * cols + (c + 1) % cols);
        add_unique(a, i, r * cols + (c + cols - 1) % cols);
      }
    }
    return topology(std::move(a), "torus");
  }

  /// The squarest torus of p nodes: rows = the largest divisor of p that is <= sqrt(p) (a prime p: a ring).
  [[nodiscard]] static topology torus(int p) {
    check_size("torus", p);
    int rows = 1;
    for (int d = 1; static_cast<long long>(d) * d <= p; ++d)
      if (p % d == 0) rows = d;
    return torus(rows, p / rows);
  }

  /// Hypercube: node i's neighbours are i xor 2^k. p must be a power of two.
  [[nodiscard]] static topology hypercube(int p) {
    check_size("hypercube", p);
    tether::detail::require((p & (p - 1)) == 0, "topology hypercube: p must be a power of two, got p = ", p);
    std::vector<std::vector<int>> a(static_cast<std::size_t>(p));
    for (int i = 0; i < p; ++i)
      for (int b = 1; b < p; b <<= 1) add_unique(a, i, i ^ b);
    return topology(std::move(a), "hypercube");
  }

  /// Complete graph: every node talks to every other.
  [[nodiscard]] static topology complete(int p) {
    check_size("complete", p);
    std::vector<std::vector<int>> a(static_cast<std::size_t>(p));
    for (int i = 0; i < p; ++i)
      for (int j = 0; j < p; ++j)
        if (j != i) a[static_cast<std::size_t>(i)].push_back(j);
    return topology(std::move(a), "complete");
  }

  /// Exponential graph: node i's neighbours are i + 2^k and i - 2^k (mod p) for every 2^k < p (degree about
  /// 2*log2(p)), as in SGP and the exponential graphs of decentralized training.
  [[nodiscard]] static topology exponential(int p) {
    check_size("exponential", p);
    std::vector<std::vector<int>> a(static_cast<std::size_t>(p));
    for (int i = 0; i < p; ++i) {
      for (long long d = 1; d < p; d <<= 1) {
        add_unique(a, i, static_cast<int>((i + d) % p));
        add_unique(a, i, static_cast<int>((i - d % p + p) % p));
      }
    }
    return topology(std::move(a), "exponential");
  }

  /// A random r-regular graph drawn from `seed` (the same graph for the same p, r and seed on every platform):
  /// points paired at random among compatible ones (Steger and Wormald's method), redrawn until the graph is
  /// simple and connected. Needs 1 <= r < p and p*r even; r = 1 is connected only for p = 2.
  [[nodiscard]] static topology random_regular(int p, int r, std::uint64_t seed) {
    check_size("random_regular", p);
    tether::detail::require(r >= 1 && r < p, "topology random_regular: r must be in [1, p - 1] = [1, ", p - 1,
                            "], got r = ", r);
    tether::detail::require((static_cast<long long>(p) * r) % 2 == 0,
                            "topology random_regular: p * r must be even, got p = ", p, ", r = ", r);
    tether::detail::require(r >= 2 || p == 2, "topology random_regular: r = 1 gives a perfect matching, which is "
                            "connected only for p = 2, got p = ", p);
    rng gen(derive_seed(seed, 0x7377726dULL, static_cast<std::uint64_t>(p), static_cast<std::uint64_t>(r)));
    for (int attempt = 0; attempt < 1000; ++attempt) {
      if (auto a = try_regular(p, r, gen)) {
        if (reachable_count(*a) == static_cast<std::size_t>(p)) return topology(std::move(*a), "random_regular");
      }
    }
    throw error(tether::detail::concat("tether: topology random_regular: no connected ", r,
                                       "-regular graph of ", p, " nodes found in 1000 draws (seed ", seed, ")"));
  }

  /// A built-in graph by kind: `r` is random_regular's degree and `seed` its seed (unused by the others).
  [[nodiscard]] static topology make(graph_kind kind, int p, int r = 4, std::uint64_t seed = 1) {
    switch (kind) {
      case graph_kind::ring: return ring(p);
      case graph_kind::torus: return torus(p);
      case graph_kind::hypercube: return hypercube(p);
      case graph_kind::complete: return complete(p);
      case graph_kind::random_regular: return random_regular(p, r, seed);
      case graph_kind::exponential: return exponential(p);
    }
    throw error("tether: topology::make: unknown graph kind");
  }

  /// The kind called `name` ("ring", "torus", "hypercube", "complete", "random_regular" or "random",
  /// "exponential"), if any.
  [[nodiscard]] static std::optional<graph_kind> parse_kind(std::string_view name) noexcept {
    if (name == "ring") return graph_kind::ring;
    if (name == "torus") return graph_kind::torus;
    if (name == "hypercube") return graph_kind::hypercube;
    if (name == "complete") return graph_kind::complete;
    if (name == "random_regular" || name == "random") return graph_kind::random_regular;
    if (name == "exponential") return graph_kind::exponential;
    return std::nullopt;
  }

  /// Number of nodes (0 for the empty graph).
  [[nodiscard]] int size() const noexcept { return static_cast<int>(adj_.size()); }
  [[nodiscard]] bool empty() const noexcept { return adj_.empty(); }
  /// The graph's name ("ring", "torus", ..., or the name given with the adjacency lists).
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// Node i's neighbours, sorted. tether::error when i is not a node.
  [[nodiscard]] std::span<const int> neighbours(int i) const {
    tether::detail::require(i >= 0 && i < size(), "topology ", name_, ": node must be in [0, ", size(),
                            "), got node = ", i);
    return adj_[static_cast<std::size_t>(i)];
  }
  [[nodiscard]] int degree(int i) const { return static_cast<int>(neighbours(i).size()); }
  /// Number of (undirected) edges.
  [[nodiscard]] std::size_t edges() const noexcept {
    std::size_t d = 0;
    for (const auto& l : adj_) d += l.size();
    return d / 2;
  }
  /// Whether i and j are neighbours.
  [[nodiscard]] bool adjacent(int i, int j) const {
    const auto n = neighbours(i);
    return std::binary_search(n.begin(), n.end(), j);
  }
  /// A 64-bit fingerprint of the edges (ranks of different processes check that they hold the same graph).
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull ^ adj_.size();
    for (const auto& l : adj_) {
      std::uint64_t s = h ^ l.size();
      h = splitmix64(s);
      for (int j : l) {
        s = h ^ static_cast<std::uint64_t>(j);
        h = splitmix64(s);
      }
    }
    return h;
  }

  friend bool operator==(const topology& a, const topology& b) noexcept { return a.adj_ == b.adj_; }

  /// The largest number of nodes a topology may have.
  static constexpr int max_nodes = 1 << 20;

 private:
  static void check_size(const char* what, int p) {
    tether::detail::require(p >= 1 && p <= max_nodes, "topology ", what, ": p must be in [1, ", max_nodes,
                            "], got p = ", p);
  }
  static void add_unique(std::vector<std::vector<int>>& a, int i, int j) {
    if (i == j) return;
    auto& l = a[static_cast<std::size_t>(i)];
    if (std::find(l.begin(), l.end(), j) == l.end()) l.push_back(j);
  }

  void validate() {
    const std::size_t p = adj_.size();
    tether::detail::require(p <= static_cast<std::size_t>(max_nodes), "topology ", name_, ": ", p,
                            " nodes, more than ", max_nodes);
    for (std::size_t i = 0; i < p; ++i) {
      auto& l = adj_[i];
      for (int j : l) {
        tether::detail::require(j >= 0 && static_cast<std::size_t>(j) < p, "topology ", name_, ": node ", i,
                                " lists neighbour ", j, ", outside [0, ", p, ")");
        tether::detail::require(static_cast<std::size_t>(j) != i, "topology ", name_, ": node ", i,
                                " lists itself as a neighbour (self-loop)");
      }
      std::sort(l.begin(), l.end());
      const auto dup = std::adjacent_find(l.begin(), l.end());
      tether::detail::require(dup == l.end(), "topology ", name_, ": node ", i, " lists neighbour ",
                              dup == l.end() ? 0 : *dup, " twice");
      tether::detail::require(l.size() <= p - 1, "topology ", name_, ": node ", i, " has degree ", l.size(),
                              ", more than size - 1 = ", p - 1);
    }
    for (std::size_t i = 0; i < p; ++i) {
      for (int j : adj_[i]) {
        const auto& back = adj_[static_cast<std::size_t>(j)];
        tether::detail::require(std::binary_search(back.begin(), back.end(), static_cast<int>(i)), "topology ",
                                name_, ": node ", i, " lists ", j, " but node ", j, " does not list ", i,
                                " (the graph must be symmetric)");
      }
    }
    if (p > 0) {
      std::vector<char> seen;
      const std::size_t reached = reachable_count(adj_, &seen);
      if (reached != p) {
        const auto lost = static_cast<std::size_t>(std::find(seen.begin(), seen.end(), 0) - seen.begin());
        throw error(tether::detail::concat("tether: topology ", name_, ": node ", lost,
                                           " is not reachable from node 0 (the graph must be connected; ",
                                           reached, " of ", p, " nodes reached)"));
      }
    }
  }

  static std::size_t reachable_count(const std::vector<std::vector<int>>& a, std::vector<char>* seen_out = nullptr) {
    std::vector<char> seen(a.size(), 0);
    if (a.empty()) return 0;
    std::vector<int> stack{0};
    seen[0] = 1;
    std::size_t count = 1;
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      for (int j : a[static_cast<std::size_t>(i)]) {
        if (j < 0 || static_cast<std::size_t>(j) >= a.size() || seen[static_cast<std::size_t>(j)]) continue;
        seen[static_cast<std::size_t>(j)] = 1;
        ++count;
        stack.push_back(j);
      }
    }
    if (seen_out) *seen_out = std::move(seen);
    return count;
  }

  // One draw of Steger and Wormald's pairing: r points per node, pairs of points on distinct, not yet
  // adjacent nodes chosen uniformly; nullopt when the draw gets stuck.
  static std::optional<std::vector<std::vector<int>>> try_regular(int p, int r, rng& gen) {
    std::vector<int> points;
    points.reserve(static_cast<std::size_t>(p) * static_cast<std::size_t>(r));
    for (int i = 0; i < p; ++i)
      for (int k = 0; k < r; ++k) points.push_back(i);
    std::vector<std::vector<int>> a(static_cast<std::size_t>(p));
    const auto linked = [&](int u, int v) {
      const auto& l = a[static_cast<std::size_t>(u)];
      return std::find(l.begin(), l.end(), v) != l.end();
    };
    while (!points.empty()) {
      bool paired = false;
      for (int tries = 0; tries < 64 && !paired; ++tries) {
        const std::size_t x = gen.below(points.size());
        const std::size_t y = gen.below(points.size());
        const int u = points[x];
        const int v = points[y];
        if (x == y || u == v || linked(u, v)) continue;
        a[static_cast<std::size_t>(u)].push_back(v);
        a[static_cast<std::size_t>(v)].push_back(u);
        // Remove both points (the larger index first).
        for (std::size_t z : {std::max(x, y), std::min(x, y)}) {
          points[z] = points.back();
          points.pop_back();
        }
        paired = true;
      }
      if (paired) continue;
      // Many misses: is any compatible pair left at all?
      bool any = false;
      for (std::size_t x = 0; x < points.size() && !any; ++x)
        for (std::size_t y = x + 1; y < points.size() && !any; ++y)
          any = points[x] != points[y] && !linked(points[x], points[y]);
      if (!any) return std::nullopt;
    }
    return a;
  }

  std::vector<std::vector<int>> adj_;
  std::string name_{};  // "" for the empty graph
};

}  // namespace tether::comm
