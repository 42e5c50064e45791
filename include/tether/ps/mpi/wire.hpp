#pragma once
/// \file
/// The parameter server's messages under MPI: the tags, the 48-byte header every message starts with, and the
/// two-part send (a header and a slice of values in place, one message, no copy).

#include <mpi.h>

#include <cstddef>
#include <cstdint>

namespace tether::ps::mpi_wire {

/// Message tags on the store's private communicator.
enum tag : int {
  // replica -> server
  init = 101,       ///< a shard's initial values (replica 0's x at its first step)
  push = 102,       ///< a shard's slice of an accrued gradient, with the rate
  fetch = 103,      ///< a request for a shard's values
  join = 104,       ///< a replica's first step: may it start (warm start, initialisation)?
  warm = 105,       ///< replica 0 took its W warm-start steps
  heartbeat = 106,  ///< renews the sender's lease
  done = 107,       ///< the replica finished
  leave = 108,      ///< the replica failed (its optimizer was destroyed before finish())
  cut = 109,        ///< a checkpoint: the replica arrived after `value` steps (replica 0: with its file's path)
  // server -> replica
  ack = 201,        ///< what became of a push (applied, staleness, lead; or dropped)
  data = 202,       ///< a shard's values, answering a fetch
  joined = 203,     ///< answer to a join: fetch, or initialise this server's shards
  final = 204,      ///< a shard's final values (after every replica finished or was lost)
  losses = 205,     ///< the replicas this server declared lost
  alive = 206,      ///< the server is up (sent to replicas it keeps waiting)
  cut_done = 207,   ///< a checkpoint's verdict: flags 0 = this server wrote its shards' file, else cut_* bits
};

/// The header of every message (6 x 8 bytes; a message's values follow it).
struct header {
  std::int64_t replica = -1;  ///< the replica the message is from or for
  std::int64_t shard = -1;    ///< the shard it concerns
  std::uint64_t value = 0;    ///< push: steps; data/final: version; ack: staleness; joined: role; warm: pushes
  std::uint64_t extra = 0;    ///< ack: lead
  double lr = 0.0;            ///< push: the rate
  std::uint64_t flags = 0;    ///< ack/data: 1 = the replica is lost (the push was dropped)
};
static_assert(sizeof(header) == 48, "the wire header is 48 bytes");

/// joined's roles.
inline constexpr std::uint64_t role_fetch = 0;
inline constexpr std::uint64_t role_initialise = 1;

/// cut_done's flags: why a checkpoint failed (0: it did not).
inline constexpr std::uint64_t cut_write_failed = 1;  ///< the server could not write its shards' file
inline constexpr std::uint64_t cut_steps_differ = 2;  ///< the replicas arrived after different steps
inline constexpr std::uint64_t cut_replica_gone = 4;  ///< a replica finished or was lost before all arrived

/// A replica loss as it travels (losses messages carry an array of them).
struct loss_record {
  std::int64_t replica;
  std::int64_t reason;
  double seconds;
  std::uint64_t steps;
  std::uint64_t pushes_applied;
};

/// A datatype of `head_bytes` bytes at `head` then `data_bytes` bytes at `data`, for MPI_BOTTOM: one message
/// of a header and the values in place. Free it with MPI_Type_free (allowed while the operation is pending).
inline int two_part_type(const void* head, int head_bytes, const void* data, int data_bytes, MPI_Datatype* out) {
  int lens[2] = {head_bytes, data_bytes};
  MPI_Aint disp[2] = {0, 0};
  MPI_Datatype types[2] = {MPI_BYTE, MPI_BYTE};
  int rc = MPI_Get_address(head, &disp[0]);
  if (rc == MPI_SUCCESS && data_bytes > 0) rc = MPI_Get_address(data, &disp[1]);
  if (rc != MPI_SUCCESS) return rc;
  rc = MPI_Type_create_struct(data_bytes > 0 ? 2 : 1, lens, disp, types, out);
  if (rc != MPI_SUCCESS) return rc;
  return MPI_Type_commit(out);
}

}  // namespace tether::ps::mpi_wire
