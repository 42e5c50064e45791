#pragma once
/// \file
/// ps::placement<Comm>: where a parameter server's shards live for communicator Comm, and how its store is
/// opened. Specialised by ps/team_store.hpp (the thread team: shards in the process) and ps/mpi_store.hpp
/// (comm::mpi: shards on the last ranks, served by a loop). See docs/algorithms/downpour.md#the-store-and-its-placements.

namespace tether::ps {

/// The placement of a parameter server on communicator Comm. A specialisation provides
/// `template <class Step, class Exec, class T> using store = ...` (a ps::parameter_store), `has_servers`,
/// `has_replay`, `check_consistent(comm, items)` and `open(comm, exec, step, n, store_options, base_lr)`.
template <class Comm>
struct placement;

/// True when ps::placement<Comm> is defined (its header included).
template <class Comm>
concept placed = requires { placement<Comm>::has_servers; };

}  // namespace tether::ps
