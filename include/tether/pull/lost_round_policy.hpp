#pragma once
/// \file
/// pull::lost_round_policy: what a worker of an asynchronous algorithm on MPI does when a peer is lost (a
/// round of asynchronous LSGD not completed within the communicator's timeout; a rank not heard from for the
/// timeout in asynchronous EASGD): it died, or stalled that long.

namespace tether::pull {

/// What a worker does when a peer is lost (docs/reliability.md#faults).
enum class lost_round_policy {
  raise,  ///< step() throws tether::timeout naming the round or the rank
  go_on,  ///< the worker goes on alone: no more rounds or exchanges, no pull; finish() does not wait
};

}  // namespace tether::pull
