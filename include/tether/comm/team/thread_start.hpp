#pragma once
/// \file
/// How the thread team starts its threads (the workers of run() and the progress thread of the non-blocking
/// collectives), with a test-only seam: a hook called just before each thread is created, which a test sets to
/// throw std::system_error, as std::thread's constructor does when the system refuses a thread (a low
/// `ulimit -u`). Root ignores RLIMIT_NPROC, so the seam is the only portable way to test that path.

#include <functional>
#include <system_error>
#include <thread>
#include <utility>

namespace tether::comm::detail {

/// The kinds of thread the team starts.
enum class team_thread {
  worker,    ///< a worker of team::run (index: its rank)
  progress,  ///< the progress thread of a group's non-blocking collectives (index: -1)
};

/// TEST ONLY: when set, called before the team creates a thread; throwing std::system_error from it plays a
/// system that refuses to create that thread. Set it before team::run and clear it after: it is read by the
/// team's threads without a lock. Never set in production code.
inline std::function<void(team_thread kind, int index)>& team_thread_hook() {
  static std::function<void(team_thread, int)> hook;
  return hook;
}

/// Starts a thread of the team running `f`: std::thread's constructor, after the test-only hook. Throws
/// std::system_error when the thread cannot be created.
template <class Thread, class F>
[[nodiscard]] Thread start_team_thread(team_thread kind, int index, F&& f) {
  if (const auto& hook = team_thread_hook()) hook(kind, index);
  return Thread(std::forward<F>(f));
}

}  // namespace tether::comm::detail
