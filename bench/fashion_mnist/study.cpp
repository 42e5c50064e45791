/// \file
/// The Fashion-MNIST convergence study: every distributed algorithm of the thread team trains the same MLP on the
/// same shards under the same budget (epochs, workers, communication period, local step, batch), for a small grid of
/// learning rates and several seeds; then, separately, where an epoch's time goes (gradient, fused update kernel,
/// communication) at a given period.
///
///     fmnist_study [--epochs 8] [--period 16] [--seeds 3] [--out out/fmnist_study] ...   (see --help)
///
/// Writes into --out: runs.csv (one row per run), curves.csv (one row per run and epoch), best_<algorithm>.dat
/// (per epoch, the mean/min/max over seeds at the algorithm's best learning rate, for gnuplot), split.csv and
/// summary.md (the markdown tables of docs/benchmarks.md). run_study.sh runs it and draws the plots.
///
/// Built a second time as `fmnist_study_mpi` (with TETHER_FMNIST_STUDY_MPI defined, linked to tether::mpi): the same
/// grid with one worker per MPI rank (train_mpi.hpp), run under mpirun; every rank runs every run, rank 0 writes the
/// files. The cluster study (run_cluster_study.sh, docs/cluster.md) runs it on the emulated cluster.

#include "cli.hpp"
#include "idx.hpp"
#include "mlp.hpp"
#include "report.hpp"
#include "train.hpp"
#ifdef TETHER_FMNIST_STUDY_MPI
#include "train_mpi.hpp"
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

#ifdef TETHER_FMNIST_STUDY_MPI
tether::comm::mpi* study_comm = nullptr;  ///< the ranks every run trains on (set by main)
#endif

/// True where results are printed and written: everywhere on the thread team, rank 0 under MPI.
bool writes_results() {
#ifdef TETHER_FMNIST_STUDY_MPI
  return study_comm->rank() == 0;
#else
  return true;
#endif
}

/// `path` opened for writing on the rank that writes results; elsewhere a stream that writes nothing.
std::ofstream results_file(const std::string& path) {
  return writes_results() ? fmnist::open_output(path) : std::ofstream{};
}

/// One training run: on the thread team, or on the MPI ranks (every rank calls it).
fmnist::train_result train_once(const fmnist::dataset& train, const fmnist::dataset& test,
                                const fmnist::train_options& o, const fmnist::train_callbacks& cb = {}) {
#ifdef TETHER_FMNIST_STUDY_MPI
  return fmnist::train_mpi(*study_comm, train, test, o, cb);
#else
  return fmnist::train(train, test, o, cb);
#endif
}

using fmnist::cli::bad_value;
using fmnist::cli::parse_number;
using fmnist::cli::usage_error;

/// One row of the study: an algorithm (possibly a variant of its defaults) and its learning-rate grid.
struct study_entry {
  fmnist::algorithm algo;
  std::vector<double> lrs;
  float leader_strength = 0.1f;  ///< lsgd, lsgd-grouped: the proximal pull p
  bool replicate = false;        ///< every worker samples the whole training set instead of its shard
  unsigned bits = 0;             ///< swarm: bits per value on the wire (0: fp32)
  tether::comm::graph_kind topology = tether::comm::graph_kind::ring;  ///< swarm: the graph
  bool nonblocking = false;      ///< swarm: the non-blocking variant
  int workers = 0;               ///< workers of this entry (0: --workers)
  std::string label;             ///< algorithm name plus the variant, for tables and files
};

struct settings {
  std::vector<study_entry> entries;
  std::size_t epochs = 8;
  std::uint32_t period = 16;
  int workers = 4;
  std::size_t batch = 64;
  float momentum = 0.9f;
  std::size_t seeds = 3;
  std::size_t first_seed = 1;
  double target = 0.88;
  std::string out = "out/fmnist_study";
  std::string data_dir = fmnist::default_directory();
  std::size_t limit = fmnist::all_samples;
  bool grid = true;
  bool split = true;
  std::size_t split_epochs = 2;
};

/// The default learning-rate grid (half decades): momentum SGD (mu = 0.9) with batch 64 per worker; synchronous SGD
/// averages every step, so its steps are those of a 4x larger batch and its grid is 3x higher.
std::vector<double> default_lrs(fmnist::algorithm a) {
  if (a == fmnist::algorithm::sync_sgd) return {0.03, 0.1, 0.3};
  // Downpour with Adagrad on the shards: Adagrad's first steps move every weight by about lr, so its grid sits a
  // half decade lower (0.1 diverged in a 2-epoch probe; 0.01 was best).
  if (a == fmnist::algorithm::downpour) return {0.003, 0.01, 0.03};
  return {0.01, 0.03, 0.1};
}

std::vector<study_entry> default_entries() {
  std::vector<study_entry> v;
  for (const auto& a : fmnist::algorithms) {
    study_entry e;
    e.algo = a.id;
    e.lrs = default_lrs(a.id);
    e.label = std::string(a.name);
    v.push_back(e);
  }
  return v;
}

constexpr const char* usage_text = R"(Usage: fmnist_study [options]
The Fashion-MNIST convergence study: every algorithm of the thread team trains the 784-256-128-10 MLP under the same
budget, for a learning-rate grid and several seeds; then the time split of an epoch. Results go to --out.

  --algorithms LIST   comma-separated algorithms (default: all of them). An item may name a variant and its own
                      grid: name[+pull=X][+replicated][:lr1/lr2/...], e.g. lsgd+pull=1:0.01/0.03/0.1
                      (+pull: LSGD's proximal pull p; +replicated: every worker samples the whole training set);
                      swarm also takes +bits=B (1..8; default fp32), +topology=G (ring, torus, hypercube, complete,
                      random, exponential; default ring), +nonblocking; any entry +workers=P (default --workers)
  --epochs N          epochs per run (default 8)
  --period N          tau, the communication period of every algorithm but sync-sgd (default 16)
  --workers N         workers (default 4)
  --batch N           minibatch per worker (default 64)
  --momentum X        momentum of the local step, heavy-ball (Nesterov for eamsgd and async-eamsgd) (default 0.9)
  --seeds N           seeds per learning rate (default 3)
  --first-seed N      the first seed (default 1): runs seeds N, N+1, ...
  --target X          accuracy for the time-to-target column (default 0.88)
  --limit N           train on the first N training images (quick checks)
  --data-dir DIR      Fashion-MNIST folder (default $TETHER_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist)
  --out DIR           output folder (default out/fmnist_study)
  --only grid|split   run only the convergence grid or only the time split (default: both)
  --split-epochs N    epochs of each time-split run (default 2)
  --help              this text
)";

settings parse_args(int argc, char** argv) {
  settings s;
  s.entries = default_entries();
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) throw usage_error{std::string(flag) + ": needs a value (or unknown option)"};
    const std::string_view v = argv[++i];
    if (flag == "--algorithms") {
      s.entries.clear();
      for (const std::string_view item : fmnist::cli::split_list(v)) {
        const std::size_t colon = item.find(':');
        std::string_view spec = item.substr(0, colon);
        const std::size_t plus = spec.find('+');
        const auto a = fmnist::parse_algorithm(spec.substr(0, plus));
        if (!a) bad_value(flag, item, "unknown algorithm (one of: " + fmnist::algorithm_names() + ")");
        study_entry e;
        e.algo = *a;
        e.lrs = default_lrs(*a);
        e.label = std::string(spec);
        spec = plus == std::string_view::npos ? std::string_view{} : spec.substr(plus + 1);
        while (!spec.empty()) {
          const std::size_t next = spec.find('+');
          const std::string_view mod = spec.substr(0, next);
          if (mod == "replicated") {
            e.replicate = true;
          } else if (mod.substr(0, 5) == "pull=") {
            const double x = parse_number<double>(flag, mod.substr(5));
            if (!std::isfinite(x) || x < 0.0) bad_value(flag, item, "pull must be >= 0");
            e.leader_strength = static_cast<float>(x);
          } else if (mod.substr(0, 5) == "bits=") {
            e.bits = parse_number<unsigned>(flag, mod.substr(5));
            if (e.bits < 1 || e.bits > 8) bad_value(flag, item, "bits must be in 1..8");
          } else if (mod.substr(0, 9) == "topology=") {
            const auto k = tether::comm::topology::parse_kind(mod.substr(9));
            if (!k) bad_value(flag, item, "unknown topology (ring, torus, hypercube, complete, random, exponential)");
            e.topology = *k;
          } else if (mod == "nonblocking") {
            e.nonblocking = true;
          } else if (mod.substr(0, 8) == "workers=") {
            e.workers = parse_number<int>(flag, mod.substr(8));
            if (e.workers < 1 || e.workers > 256) bad_value(flag, item, "workers must be in [1, 256]");
          } else {
            bad_value(flag, item, "unknown variant (use +pull=X, +replicated, +bits=B, +topology=G, +nonblocking or +workers=P)");
          }
          spec = next == std::string_view::npos ? std::string_view{} : spec.substr(next + 1);
        }
        if (colon != std::string_view::npos) {
          e.lrs.clear();
          std::string_view rest = item.substr(colon + 1);
          for (;;) {
            const std::size_t slash = rest.find('/');
            const double lr = parse_number<double>(flag, rest.substr(0, slash));
            if (!std::isfinite(lr) || lr <= 0.0) bad_value(flag, item, "learning rates must be > 0");
            e.lrs.push_back(lr);
            if (slash == std::string_view::npos) break;
            rest.remove_prefix(slash + 1);
          }
        }
        s.entries.push_back(e);
      }
    } else if (flag == "--epochs") {
      s.epochs = parse_number<std::size_t>(flag, v);
      if (s.epochs < 1 || s.epochs > 1000) bad_value(flag, v, "must be in [1, 1000]");
    } else if (flag == "--period") {
      s.period = parse_number<std::uint32_t>(flag, v);
      if (s.period < 1) bad_value(flag, v, "must be >= 1");
    } else if (flag == "--workers") {
      s.workers = parse_number<int>(flag, v);
      if (s.workers < 1 || s.workers > 256) bad_value(flag, v, "must be in [1, 256]");
    } else if (flag == "--batch") {
      s.batch = parse_number<std::size_t>(flag, v);
      if (s.batch < 1 || s.batch > 60000) bad_value(flag, v, "must be in [1, 60000]");
    } else if (flag == "--momentum") {
      const double m = parse_number<double>(flag, v);
      if (!std::isfinite(m) || m < 0.0 || m >= 1.0) bad_value(flag, v, "must be in [0, 1)");
      s.momentum = static_cast<float>(m);
    } else if (flag == "--seeds") {
      s.seeds = parse_number<std::size_t>(flag, v);
      if (s.seeds < 1 || s.seeds > 100) bad_value(flag, v, "must be in [1, 100]");
    } else if (flag == "--first-seed") {
      s.first_seed = parse_number<std::size_t>(flag, v);
      if (s.first_seed < 1 || s.first_seed > 1000000) bad_value(flag, v, "must be in [1, 1000000]");
    } else if (flag == "--target") {
      s.target = parse_number<double>(flag, v);
      if (!(s.target > 0.0 && s.target <= 1.0)) bad_value(flag, v, "must be in (0, 1]");
    } else if (flag == "--limit") {
      s.limit = parse_number<std::size_t>(flag, v);
      if (s.limit < 1) bad_value(flag, v, "must be >= 1");
    } else if (flag == "--data-dir") {
      s.data_dir = v;
    } else if (flag == "--out") {
      if (v.empty()) bad_value(flag, v, "must not be empty");
      s.out = v;
    } else if (flag == "--only") {
      if (v == "grid") {
        s.split = false;
      } else if (v == "split") {
        s.grid = false;
      } else {
        bad_value(flag, v, "must be grid or split");
      }
    } else if (flag == "--split-epochs") {
      s.split_epochs = parse_number<std::size_t>(flag, v);
      if (s.split_epochs < 1) bad_value(flag, v, "must be >= 1");
    } else {
      throw usage_error{"unknown option '" + std::string(flag) + "'"};
    }
  }
  return s;
}

// --- statistics --------------------------------------------------------------------------------------------

struct stats {
  double mean = 0.0;
  double sd = 0.0;  // sample standard deviation (0 for one value)
  double min = 0.0;
  double max = 0.0;
  std::size_t n = 0;
};

stats summarize(const std::vector<double>& v) {
  stats s;
  s.n = v.size();
  if (v.empty()) return s;
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  for (const double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0.0;
    for (const double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

/// "88.12 ± 0.21" in percent.
std::string pct(const stats& s) { return fmt("%.2f", 100.0 * s.mean) + " ± " + fmt("%.2f", 100.0 * s.sd); }

// --- the grid ----------------------------------------------------------------------------------------------

struct run_row {
  std::size_t entry;
  double lr;
  std::uint64_t seed;
  fmnist::train_result result;
};

fmnist::train_options base_options(const settings& s) {
  fmnist::train_options o;
  o.workers = s.workers;
  o.epochs = s.epochs;
  o.period = s.period;
  o.batch = s.batch;
  o.momentum = s.momentum;
  o.step = s.momentum > 0.0f ? fmnist::local_step::momentum : fmnist::local_step::sgd;
  o.schedule = fmnist::lr_schedule::cosine;
  o.evaluate_average = true;
  return o;
}

/// What one group of runs (an algorithm at one learning rate) achieved over its seeds.
struct group_summary {
  std::size_t entry;
  double lr;
  stats final_acc, best_acc, avg_acc, bytes, wall, train, to_target, epoch_to_target;
  std::size_t reached = 0;
  std::size_t runs = 0;
  std::uint64_t rounds = 0;
};

group_summary summarize_group(const std::vector<const run_row*>& rows, double target) {
  group_summary g{rows.front()->entry, rows.front()->lr, {}, {}, {}, {}, {}, {}, {}, {}, 0, rows.size(), 0};
  std::vector<double> fa, ba, aa, by, wa, tr, tt, te;
  for (const run_row* r : rows) {
    fa.push_back(r->result.final_accuracy());
    ba.push_back(r->result.best_accuracy());
    aa.push_back(r->result.epochs.back().average_accuracy);
    by.push_back(r->result.epochs.back().bytes_per_worker);
    wa.push_back(r->result.wall_s);
    tr.push_back(r->result.epochs.back().train_s);
    if (const auto t = r->result.time_to(target)) {
      tt.push_back(*t);
      ++g.reached;
      for (const auto& e : r->result.epochs) {
        if (e.epoch > 0 && e.test_accuracy >= target) {
          te.push_back(static_cast<double>(e.epoch));
          break;
        }
      }
    }
    g.rounds = r->result.epochs.back().rounds;
  }
  g.final_acc = summarize(fa);
  g.best_acc = summarize(ba);
  g.avg_acc = summarize(aa);
  g.bytes = summarize(by);
  g.wall = summarize(wa);
  g.train = summarize(tr);
  g.to_target = summarize(tt);
  g.epoch_to_target = summarize(te);
  return g;
}

std::string step_label(const settings& s, fmnist::algorithm a) {
  if (a == fmnist::algorithm::eamsgd || a == fmnist::algorithm::async_eamsgd) return "Nesterov " + fmt("%g", static_cast<double>(s.momentum));
  if (s.momentum > 0.0f) return "momentum " + fmt("%g", static_cast<double>(s.momentum));
  return "SGD";
}

std::string tau_label(const settings& s, fmnist::algorithm a) {
  if (a == fmnist::algorithm::sync_sgd) return "1";
  if (a == fmnist::algorithm::lsgd_grouped) return std::to_string(s.period) + " / " + std::to_string(4 * s.period);
  return std::to_string(s.period);
}

void run_grid(const settings& s, const fmnist::dataset& train, const fmnist::dataset& test, std::ofstream& md) {
  std::size_t total = 0;
  for (const auto& e : s.entries) total += e.lrs.size() * s.seeds;
  std::ofstream runs = results_file(s.out + "/runs.csv");
  std::ofstream curves = results_file(s.out + "/curves.csv");
  runs << "algorithm,lr,seed,final_accuracy,best_accuracy,final_average_accuracy,bytes_per_worker,rounds,wall_s,train_s,time_to_target_s,"
          "gradient_s,step_s,kernel_s,comm_s\n";
  curves << "algorithm,lr,seed," << fmnist::epoch_csv_header << '\n';

  std::vector<run_row> rows;
  rows.reserve(total);
  std::size_t k = 0;
  const auto t_start = std::chrono::steady_clock::now();
  for (std::size_t ei = 0; ei < s.entries.size(); ++ei) {
    const study_entry& e = s.entries[ei];
    for (const double lr : e.lrs) {
      for (std::size_t seed = s.first_seed; seed < s.first_seed + s.seeds; ++seed) {
        fmnist::train_options o = base_options(s);
        o.algo = e.algo;
        o.lr = lr;
        o.seed = seed;
        o.leader_strength = e.leader_strength;
        o.replicate_data = e.replicate;
        o.bits = e.bits;
        o.topology = e.topology;
        o.nonblocking = e.nonblocking;
        if (e.workers > 0) o.workers = e.workers;
        ++k;
        // Each epoch's row is written as it comes, so that a run cut short (a time limit) leaves its curve so far.
        const std::string& label = e.label;
        fmnist::train_callbacks cb;
        cb.on_epoch = [&](const fmnist::epoch_record& ep) {
          curves << label << ',' << lr << ',' << seed << ',' << fmnist::epoch_csv_row(ep) << '\n';
          curves.flush();
        };
        fmnist::train_result r = train_once(train, test, o, cb);
        if (r.epochs.empty()) continue;  // a server rank (Downpour under MPI): nothing measured here
        const std::string& name = e.label;
        const auto& last = r.epochs.back();
        const auto tt = r.time_to(s.target);
        if (writes_results()) std::printf("[%3zu/%zu] %-18s lr %-5g seed %zu: final %.2f%%  best %.2f%%  %s/worker  %.1f s  (%.0f s so far)\n",
                    k, total, name.c_str(), lr, seed, 100.0 * r.final_accuracy(), 100.0 * r.best_accuracy(),
                    fmnist::human_bytes(last.bytes_per_worker).c_str(), r.wall_s,
                    fmnist::detail::seconds_since(t_start));
        std::fflush(stdout);
        char line[512];
        std::snprintf(line, sizeof line, "%s,%g,%zu,%.4f,%.4f,%.4f,%.0f,%llu,%.3f,%.3f,%s,%.4f,%.4f,%.4f,%.4f",
                      name.c_str(), lr, seed, r.final_accuracy(), r.best_accuracy(), last.average_accuracy,
                      last.bytes_per_worker,
                      static_cast<unsigned long long>(last.rounds), r.wall_s, last.train_s,
                      tt ? fmt("%.3f", *tt).c_str() : "", last.gradient_s, last.step_s, last.kernel_s, last.comm_s);
        runs << line << '\n';
        runs.flush();
        rows.push_back({ei, lr, seed, std::move(r)});
      }
    }
  }
  const double grid_s = fmnist::detail::seconds_since(t_start);

  if (!writes_results()) return;
  // Group by (algorithm, lr); pick each algorithm's best lr by mean final accuracy.
  std::vector<group_summary> groups;
  std::map<std::size_t, std::size_t> best;  // entry -> index into groups
  for (std::size_t ei = 0; ei < s.entries.size(); ++ei) {
    for (const double lr : s.entries[ei].lrs) {
      std::vector<const run_row*> g;
      for (const auto& r : rows) {
        if (r.entry == ei && r.lr == lr) g.push_back(&r);
      }
      groups.push_back(summarize_group(g, s.target));
      const auto it = best.find(ei);
      if (it == best.end() || groups.back().final_acc.mean > groups[it->second].final_acc.mean)
        best[ei] = groups.size() - 1;
    }
  }

  // Curves at the best lr, averaged over seeds, for gnuplot: one file per algorithm.
  for (const auto& [ei, gi] : best) {
    const double lr = groups[gi].lr;
    std::vector<const run_row*> g;
    for (const auto& r : rows) {
      if (r.entry == ei && r.lr == lr) g.push_back(&r);
    }
    std::string file = s.entries[ei].label;
    for (char& c : file) {
      if (c == '+' || c == '=' || c == '/') c = '_';
    }
    std::ofstream dat = fmnist::open_output(s.out + "/best_" + file + ".dat");
    dat << "# " << s.entries[ei].label << " lr " << lr << ": epoch, accuracy % (mean, min, max over "
        << g.size() << " seeds), MB received per worker, training seconds (mean)\n";
    for (std::size_t ep = 0; ep < g.front()->result.epochs.size(); ++ep) {
      std::vector<double> acc, mb, ts;
      for (const run_row* r : g) {
        acc.push_back(100.0 * r->result.epochs[ep].test_accuracy);
        mb.push_back(r->result.epochs[ep].bytes_per_worker / 1e6);
        ts.push_back(r->result.epochs[ep].train_s);
      }
      const stats a = summarize(acc);
      char line[256];
      std::snprintf(line, sizeof line, "%zu %.3f %.3f %.3f %.3f %.3f\n", ep, a.mean, a.min, a.max, summarize(mb).mean,
                    summarize(ts).mean);
      dat << line;
    }
  }

  const auto target_pct = fmt("%.0f", 100.0 * s.target);
  md << "### Best learning rate of each algorithm\n\n";
  md << "p = " << s.workers << " workers, " << s.epochs << " epochs, tau = " << s.period << ", batch " << s.batch
     << " per worker, cosine learning-rate decay, " << s.seeds
     << " seeds per learning rate. Accuracy: mean ± sample standard deviation over the seeds, of the algorithm's "
        "output model on the 10000 test images (best: the best epoch of each run); workers' mean: the average of "
        "the workers' parameters after the last epoch. Bytes: payload received per worker (mean over workers). Time to "
     << target_pct << "%: training wall time (evaluations excluded) at the end of the first epoch at or above "
     << target_pct << "%, and that epoch, means over the seeds that reached it (n/runs). The machine was shared with "
        "other jobs: wall times vary by 2-3x between runs of the same work; epochs are the comparable measure.\n\n";
  md << "| algorithm | local step | tau | lr | final accuracy % | best accuracy % | workers' mean, final % | "
        "MB / worker | rounds | wall s | time to "
     << target_pct << "% |\n";
  md << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (std::size_t ei = 0; ei < s.entries.size(); ++ei) {
    const study_entry& e = s.entries[ei];
    const group_summary& g = groups[best[ei]];
    md << "| " << e.label << " | " << step_label(s, e.algo) << " | " << tau_label(s, e.algo)
       << " | " << fmt("%g", g.lr) << " | " << pct(g.final_acc) << " | " << pct(g.best_acc) << " | "
       << pct(g.avg_acc) << " | " << fmt("%.0f", g.bytes.mean / 1e6) << " | " << g.rounds << " | " << fmt("%.1f", g.wall.mean) << " | "
       << (g.reached > 0 ? fmt("%.1f", g.to_target.mean) + " s, epoch " + fmt("%.1f", g.epoch_to_target.mean) +
                               " (" + std::to_string(g.reached) + "/" + std::to_string(g.runs) + ")"
                         : "not reached (0/" + std::to_string(g.runs) + ")")
       << " |\n";
  }
  md << "\n### Every learning rate\n\n";
  md << "| algorithm | lr | final accuracy % | best accuracy % | min–max final % | wall s | reached " << target_pct
     << "% |\n";
  md << "|---|---|---|---|---|---|---|\n";
  for (const auto& g : groups) {
    md << "| " << s.entries[g.entry].label << " | " << fmt("%g", g.lr) << " | " << pct(g.final_acc) << " | "
       << pct(g.best_acc) << " | " << fmt("%.2f", 100.0 * g.final_acc.min) << "–" << fmt("%.2f", 100.0 * g.final_acc.max)
       << " | " << fmt("%.1f", g.wall.mean) << " | " << g.reached << "/" << g.runs << " |\n";
  }
  md << "\nThe grid took " << fmt("%.0f", grid_s) << " s (" << rows.size() << " runs).\n\n";
  md.flush();
}

// --- the time split ----------------------------------------------------------------------------------------

void run_split(const settings& s, const fmnist::dataset& train, const fmnist::dataset& test, std::ofstream& md) {
  struct split_case {
    fmnist::algorithm algo;
    int workers;
    std::size_t batch;
    bool check_gradient = true;
  };
  using fmnist::algorithm;
  std::vector<split_case> cases;
  for (const int p : {1, 2, s.workers}) {
    if (p == 2 && s.workers <= 2) continue;
    for (const auto a : {algorithm::lsgd, algorithm::lsgd_grouped, algorithm::easgd, algorithm::local_sgd,
                         algorithm::overlap_local_sgd, algorithm::sync_sgd, algorithm::async_lsgd,
                         algorithm::async_easgd, algorithm::swarm}) {
      if (p == 1 && a != algorithm::lsgd && a != algorithm::easgd) continue;  // one worker: only the kernels differ
      if (a == algorithm::lsgd_grouped && (p < 4 || p % 2 != 0)) continue;
      cases.push_back({a, p, s.batch});
    }
    cases.push_back({algorithm::lsgd, p, 2 * s.batch});
    if (p <= 2) {
      cases.push_back({algorithm::lsgd, p, s.batch, false});
      cases.push_back({algorithm::lsgd, p, 2 * s.batch, false});
    }
  }

  std::ofstream csv = fmnist::open_output(s.out + "/split.csv");
  csv << "algorithm,workers,batch,period,epochs,epoch_s,gradient_s,step_s,kernel_s,comm_s\n";
  md << "### Epoch time split\n\n";
  md << "One seed, " << s.split_epochs << " epochs, tau = " << s.period << " (sync-sgd: 1; lsgd-grouped: groups of 2, "
     << "global period " << 4 * s.period << "), lr 0.05 constant, momentum " << fmt("%g", static_cast<double>(s.momentum))
     << ". Wall seconds per worker and epoch, mean over the workers: gradient = around `mlp::evaluate` (forward "
        "and backward passes); step = around `optimizer::step`, of which kernel = `worker_stats::seconds_compute` "
        "(the fused update), comm = `worker_stats::seconds_comm` (collectives, including the wait at their "
        "barriers for the slowest worker), other = the rest of the step (the non-finite gradient scan, "
        "bookkeeping); \"no NaN scan\": `check_gradient = false`, which drops the optimizer's scan of each "
        "gradient for non-finite values. Percentages are of gradient + step.\n\n";
  md << "| algorithm | p | batch | s / epoch | gradient % | step % | kernel % | comm % | other % |\n";
  md << "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& c : cases) {
    fmnist::train_options o = base_options(s);
    o.algo = c.algo;
    o.workers = c.workers;
    o.batch = c.batch;
    o.epochs = s.split_epochs;
    o.lr = 0.05;
    o.seed = 1;
    o.schedule = fmnist::lr_schedule::constant;
    o.check_gradient = c.check_gradient;
    const fmnist::train_result r = train_once(train, test, o);
    const auto& last = r.epochs.back();
    const double ep = static_cast<double>(s.split_epochs);
    const double total = last.gradient_s + last.step_s;
    const double other = last.step_s - last.kernel_s - last.comm_s;
    const auto name = std::string(fmnist::algorithm_name(c.algo)) + (c.check_gradient ? "" : " (no NaN scan)");
    char line[512];
    std::snprintf(line, sizeof line, "%s,%d,%zu,%u,%zu,%.4f,%.4f,%.4f,%.4f,%.4f\n", name.c_str(), c.workers, c.batch,
                  c.algo == algorithm::sync_sgd ? 1U : s.period, s.split_epochs, total / ep, last.gradient_s / ep,
                  last.step_s / ep, last.kernel_s / ep, last.comm_s / ep);
    csv << line;
    csv.flush();
    const auto p100 = [&](double x) { return fmt("%.1f", 100.0 * x / total); };
    md << "| " << name << " | " << c.workers << " | " << c.batch << " | " << fmt("%.2f", total / ep) << " | "
       << p100(last.gradient_s) << " | " << p100(last.step_s) << " | " << p100(last.kernel_s) << " | "
       << p100(last.comm_s) << " | " << p100(other) << " |\n";
    std::printf("split %-30s p=%d batch %3zu: %.2f s/epoch per worker, gradient %.1f%%, step %.1f%% (kernel %.1f%%, "
                "comm %.1f%%, other %.1f%%)\n",
                name.c_str(), c.workers, c.batch, total / ep, 100.0 * last.gradient_s / total,
                100.0 * last.step_s / total, 100.0 * last.kernel_s / total, 100.0 * last.comm_s / total,
                100.0 * other / total);
    std::fflush(stdout);
  }
  md << '\n';
}

}  // namespace

int main(int argc, char** argv) {
#ifdef TETHER_FMNIST_STUDY_MPI
  // comm::mpi needs no more than MPI_THREAD_SERIALIZED; asking for MPI_THREAD_MULTIPLE would keep Open MPI's
  // osc/pt2pt (its one-sided component over TCP) from asynchronous EASGD's window across the cluster's hosts.
  tether::comm::mpi_environment env(argc, argv, {.requested = MPI_THREAD_SERIALIZED});
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 600.0});
  study_comm = &comm;
  constexpr const char* program = "fmnist_study_mpi";
#else
  constexpr const char* program = "fmnist_study";
#endif
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      if (writes_results()) std::fputs(usage_text, stdout);
      return 0;
    }
  }
  settings s;
  try {
    s = parse_args(argc, argv);
#ifdef TETHER_FMNIST_STUDY_MPI
    // One worker per rank; the time split measures the thread team only.
    if (!s.grid) throw usage_error{"--only split: the time split runs on the thread team (fmnist_study) only"};
    s.split = false;
    s.workers = comm.size();
#endif
  } catch (const usage_error& e) {
    if (writes_results()) std::fprintf(stderr, "%s: %s (see --help)\n", program, e.message.c_str());
    return 2;
  }
  try {
    const fmnist::dataset train = fmnist::load_fashion_mnist(s.data_dir, fmnist::split::train, s.limit);
    const fmnist::dataset test =
        fmnist::load_fashion_mnist(s.data_dir, fmnist::split::test, fmnist::all_samples, train.norm);
    if (writes_results())
      std::printf("%s: %zu training and %zu test images, p = %d, %zu epochs, tau = %u, batch %zu, %zu seeds\n", program,
                  train.count, test.count, s.workers, s.epochs, s.period, s.batch, s.seeds);
    std::ofstream md = results_file(s.out + "/summary.md");
    if (s.grid) run_grid(s, train, test, md);
    if (s.split) run_split(s, train, test, md);
    if (writes_results()) std::printf("wrote %s/summary.md\n", s.out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
#ifdef TETHER_FMNIST_STUDY_MPI
    // The other ranks may wait in a run this rank left (rank 0 alone failing to write its results): end them all.
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    return 1;
  }
}
