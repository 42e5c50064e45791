#pragma once
/// \file
/// comm::nccl: one worker per GPU, collectives by NCCL. Opt-in header (component tether::nccl: the CUDA
/// runtime and the NCCL library); it needs no kernels, so any C++ compiler builds it. See docs/nccl.md.
///
///     tether::team team(gpus);                                   // a thread per GPU ...
///     team.run([&](tether::team::worker& w) {
///       tether::comm::nccl comm(w);                              // ... each drives GPU w.rank() % gpus
///       tether::algo::lsgd<tether::comm::nccl, tether::step::sgd, tether::exec::cuda> opt(comm, n, {});
///       ... opt.step(tether::as_view<tether::mem::cuda>(x, n), tether::as_view<tether::mem::cuda>(g, n),
///       loss);
///     });
///
/// The same constructor takes a comm::mpi (one GPU per rank: rank 0 makes the ncclUniqueId, MPI broadcasts
/// it), or any tether communicator; nccl(id, size, rank) takes an id the caller distributed itself.
///
/// Device collectives (`(view<T, mem::cuda>, exec)` overloads) run NCCL on the communicator's own stream
/// after the work queued on the execution space's stream so far, and return when NCCL is done: the host
/// waits, bounded by the timeout, so the execution space's stream never waits on NCCL and a dead peer
/// surfaces as an exception, not as a hang in the caller's cudaStreamSynchronize. iallreduce_sum returns at
/// once; its request's wait() and test() are bounded the same way. Host collectives (`std::span`) go through
/// a device scratch buffer and return when done. Every host wait polls the CUDA event of the operation and
/// ncclCommGetAsyncError: an NCCL error, or `timeout` seconds without completion (a peer died), aborts the
/// communicator (ncclCommAbort) and throws tether::runtime_error. A group (group()) shares the parent's
/// stream, so all NCCL work of a worker is serialized in the order it was called.
///
/// Byte counters follow comm::mpi's model (payload bytes per worker): all-reduce 2*(n - n_r)*s each way,
/// n_r this worker's share of a reduce-scatter; broadcast (p-1)*n*s sent by the root, n*s received by the
/// others; election 16 bytes each way (two 8-byte keys); barriers and consistency checks are not counted.
///
/// This is the public header; the parts live in comm/nccl/: support.hpp (datatypes, traits, waits, device
/// guard), key.hpp (the election key), options.hpp (nccl_options), communicator.hpp (comm::nccl).

#include "tether/comm/nccl/communicator.hpp"
