//! The thread pool and the chunked, interruptible parallel loop every heavy computation runs through.
//!
//! Thread count: `set_num_threads(n)`, else `REPCOMPRESS_NUM_THREADS`, else `RAYON_NUM_THREADS`,
//! else all cores. We keep a pool of our own (rayon's global pool can be sized only once). On Linux a
//! pool of one worker per usable CPU pins worker i to the i-th CPU ([`pin_plan`]).

use crate::error::{CoreError, Result};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static POOL: Mutex<Option<Arc<Pool>>> = Mutex::new(None);
static REQUESTED: Mutex<Option<usize>> = Mutex::new(None);

fn env_threads(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()?
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
}

fn default_threads() -> usize {
    env_threads("REPCOMPRESS_NUM_THREADS")
        .or_else(|| env_threads("RAYON_NUM_THREADS"))
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sets the number of worker threads used by every later call.
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(CoreError::invalid("n", "the number of threads must be at least 1"));
    }
    *lock(&REQUESTED) = Some(n);
    *lock(&POOL) = None;
    Ok(())
}

/// The number of worker threads the next call will use.
pub fn get_num_threads() -> usize {
    lock(&REQUESTED).unwrap_or_else(default_threads)
}

/// A pool of workers, and the CPU mask a thread started from one of them gets back when they are
/// pinned ([`pin_plan`]): such a thread would inherit its worker's single CPU.
pub struct Pool {
    workers: rayon::ThreadPool,
    unpin: Option<Vec<usize>>,
}

impl Pool {
    /// A pool of `threads` workers, pinned as [`pin_plan`] says for this process' CPUs and the
    /// value `env` of [`PIN_ENV`].
    fn build(threads: usize, env: Option<&str>) -> Result<Pool> {
        let allowed = allowed_cpus();
        let placement = pin_plan(threads, &allowed, env);
        let unpin = placement.is_some().then_some(allowed);
        let workers = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("repcompress-{i}"))
            .start_handler(move |i| {
                if let Some(&cpu) = placement.as_ref().and_then(|cpus| cpus.get(i)) {
                    set_thread_cpus(&[cpu]);
                }
            })
            .build()
            .map_err(|e| CoreError::Internal(format!("cannot start the thread pool: {e}")))?;
        Ok(Pool { workers, unpin })
    }
}

/// The shared pool, built on first use with `get_num_threads()` workers.
pub fn pool() -> Result<Arc<Pool>> {
    let mut guard = lock(&POOL);
    if let Some(p) = guard.as_ref() {
        return Ok(Arc::clone(p));
    }
    let p = Arc::new(Pool::build(get_num_threads(), std::env::var(PIN_ENV).ok().as_deref())?);
    *guard = Some(Arc::clone(&p));
    Ok(p)
}

/// The environment variable that turns the workers' CPU placement off (`0`); see [`pin_plan`].
pub const PIN_ENV: &str = "REPCOMPRESS_PIN_THREADS";

/// Where the pool's workers run: worker i on CPU `cpus[i]`, or `None` to leave them to the OS.
///
/// Pinned only when the pool has one worker per CPU the process may use (`threads` equal to the
/// size of its affinity mask, `allowed`, and at least 2) and [`PIN_ENV`] is not `0`. Such a pool
/// takes every CPU anyway, so fixing which worker runs where costs the OS no choice it could use,
/// while leaving it to the OS cost a call up to half its speed on virtual machines: after the
/// workers had slept for a few tens of milliseconds (a single-threaded computation in between, as
/// in a training loop or a benchmark that alternates with a peer), Linux guests woke both workers
/// on the same virtual CPU, the other one counting as preempted by the host while idle, and moved
/// one away only milliseconds later (measured on a 2-CPU KVM guest with
/// `benches/bench_thread_pools.py`: a 4-D entropy at N = 10⁵ took 42–43 ms after such a pause
/// against 28.5 ms back to back, a 1-D MI 19–20 against 12–13 ms, about the one-thread time).
/// A smaller pool is not pinned, so the OS keeps placing it among the spare CPUs, and neither is a
/// pool when the mask cannot be read.
pub(crate) fn pin_plan(threads: usize, allowed: &[usize], env: Option<&str>) -> Option<Vec<usize>> {
    let off = env.is_some_and(|v| v.trim() == "0");
    (!off && threads >= 2 && allowed.len() == threads).then(|| allowed.to_vec())
}

/// The CPUs the calling thread may run on (its affinity mask, inherited by the threads it starts),
/// ascending; empty where the mask cannot be read (other systems, or more CPUs than `cpu_set_t`
/// holds).
#[cfg(target_os = "linux")]
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain bits, all zero a valid empty set; the call writes at most the
    // size it is given, and `CPU_ISSET` reads within the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Restricts the calling thread to `cpus` (from a mask read by [`allowed_cpus`]); a refusal (a
/// sandbox that forbids it) leaves its mask as it was.
#[cfg(target_os = "linux")]
fn set_thread_cpus(cpus: &[usize]) {
    // SAFETY: as in `allowed_cpus`; every CPU number came from such a mask, below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(not(target_os = "linux"))]
fn set_thread_cpus(_cpus: &[usize]) {}

/// After `fork()` the child has no worker threads: forget (never join or drop) the parent's pool
/// so that the child's first call builds a fresh one instead of waiting forever.
pub fn forget_pool_after_fork() {
    // Nor does it have the threads of detached jobs (`Ctl::run_detached`) that the parent counted.
    DETACHED_RUNNING.store(0, AtomicOrdering::Release);
    // `try_lock`: a lock held by a parent thread at fork time would never be released in the child.
    let guard = match POOL.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    if let Some(mut g) = guard {
        if let Some(p) = g.take() {
            std::mem::forget(p);
        }
    }
}

/// How a computation runs: on which pool, and how it checks for a user interrupt between chunks.
pub struct Ctl<'a> {
    pool: Arc<Pool>,
    interrupt: &'a dyn Fn() -> Result<()>,
}

fn no_interrupt() -> Result<()> {
    Ok(())
}

/// The segments `out[bounds[s]..bounds[s + 1]]` (`bounds` ascending, from 0), as separate slices
/// that parallel tasks can fill; whatever lies past the last bound is left out.
pub fn split_at_bounds<'o, O>(out: &'o mut [O], bounds: &[usize]) -> Vec<&'o mut [O]> {
    debug_assert!(bounds.first().is_none_or(|&b| b == 0));
    let mut segments = Vec::with_capacity(bounds.len().saturating_sub(1));
    let mut rest = out;
    for w in bounds.windows(2) {
        let (seg, tail) = std::mem::take(&mut rest).split_at_mut(w[1] - w[0]);
        segments.push(seg);
        rest = tail;
    }
    segments
}

/// Target duration of one chunk of parallel work between two interrupt checks.
const CHUNK_TARGET: Duration = Duration::from_millis(150);

impl<'a> Ctl<'a> {
    pub fn new(interrupt: &'a dyn Fn() -> Result<()>) -> Result<Self> {
        Ok(Ctl {
            pool: pool()?,
            interrupt,
        })
    }

    /// A control that never interrupts (tests, pure-Rust callers).
    pub fn uninterruptible() -> Result<Ctl<'static>> {
        Ok(Ctl {
            pool: pool()?,
            interrupt: &no_interrupt,
        })
    }

    /// An uninterruptible control on a pool of its own with `threads` workers, for tests that
    /// compare thread counts without touching the shared setting other tests read.
    #[cfg(test)]
    pub(crate) fn with_threads(threads: usize) -> Ctl<'static> {
        Ctl {
            pool: Arc::new(Pool::build(threads, None).expect("a test pool")),
            interrupt: &no_interrupt,
        }
    }

    pub fn threads(&self) -> usize {
        self.pool.workers.current_num_threads()
    }

    /// Runs `f` inside the pool (for work that is not chunked: sorting, tree building).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.workers.install(f)
    }

    /// A maker of uninterruptible controls on this control's pool, for work that runs nested inside
    /// a parallel job (the outer job checks for interrupts between its chunks).
    pub fn nested(&self) -> impl Fn() -> Ctl<'static> + Sync {
        let pool = Arc::clone(&self.pool);
        move || Ctl {
            pool: Arc::clone(&pool),
            interrupt: &no_interrupt,
        }
    }

    /// Calls the interrupt check.
    pub fn check(&self) -> Result<()> {
        (self.interrupt)()
    }

    /// Runs `step` over consecutive ranges of `0..n` (each at least `min_chunk` long, except the
    /// last), sized so that one range takes about `CHUNK_TARGET`; the interrupt check runs between
    /// ranges, in the calling thread. An error of `step` ends the loop.
    pub(crate) fn run_adaptive(
        &self,
        n: usize,
        min_chunk: usize,
        mut step: impl FnMut(std::ops::Range<usize>) -> Result<()>,
    ) -> Result<()> {
        let min_chunk = min_chunk.max(1);
        let mut chunk = min_chunk;
        let mut start = 0;
        while start < n {
            let end = n.min(start + chunk);
            let t0 = Instant::now();
            step(start..end)?;
            self.check()?;
            // The next range aims at CHUNK_TARGET at this range's pace (growing at most 16-fold),
            // in whole multiples of `min_chunk`: few ranges, so few waits at their ends.
            let (took, len) = (t0.elapsed().as_secs_f64(), end - start);
            let aim = if took > 0.0 {
                (len as f64 * CHUNK_TARGET.as_secs_f64() / took) as usize
            } else {
                usize::MAX
            };
            chunk = aim
                .clamp(min_chunk, len.saturating_mul(16).max(min_chunk))
                .div_ceil(min_chunk)
                .saturating_mul(min_chunk);
            start = end;
        }
        Ok(())
    }

    /// Fills `out` in parallel: `f(start, block)` fills `out[start..start + block.len()]`, blocks
    /// of `block` items spread over the threads, interruptible between chunks of blocks.
    /// The result never depends on the chunking or the thread count.
    pub fn fill_blocks<O: Send>(&self, out: &mut [O], block: usize, f: impl Fn(usize, &mut [O]) + Sync) -> Result<()> {
        self.try_fill_blocks_with(
            out,
            block,
            || Ok(()),
            |_, start, sl| {
                f(start, sl);
                Ok(())
            },
        )
    }

    /// Like `fill_blocks`, with scratch space: `init()` makes a state (buffers) that a worker reuses
    /// for the blocks it runs one after another, passed to `f(state, start, block)`. `f` must leave
    /// the state as it found it, so that no result depends on which blocks shared a state.
    pub fn fill_blocks_with<O: Send, S>(
        &self,
        out: &mut [O],
        block: usize,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, usize, &mut [O]) + Sync,
    ) -> Result<()> {
        self.try_fill_blocks_with(
            out,
            block,
            || Ok(init()),
            |state, start, sl| {
                f(state, start, sl);
                Ok(())
            },
        )
    }

    /// `fill_blocks` for work that can fail (a scratch buffer that cannot be allocated): the first
    /// error stops the work after the chunk under way and is returned.
    pub fn try_fill_blocks<O: Send>(
        &self,
        out: &mut [O],
        block: usize,
        f: impl Fn(usize, &mut [O]) -> Result<()> + Sync,
    ) -> Result<()> {
        self.try_fill_blocks_with(out, block, || Ok(()), |_, start, sl| f(start, sl))
    }

    /// `fill_blocks_with` for work that can fail, `init` included; see `try_fill_blocks`.
    pub fn try_fill_blocks_with<O: Send, S>(
        &self,
        out: &mut [O],
        block: usize,
        init: impl Fn() -> Result<S> + Sync,
        f: impl Fn(&mut S, usize, &mut [O]) -> Result<()> + Sync,
    ) -> Result<()> {
        let block = block.max(1);
        let n_blocks = out.len().div_ceil(block);
        let mut rest = out;
        let mut offset = 0;
        let failure = FirstError::default();
        self.run_adaptive(n_blocks, self.threads(), |blocks| {
            let len = (blocks.len() * block).min(rest.len());
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(len);
            rest = tail;
            let base = offset;
            offset += len;
            self.pool.workers.install(|| {
                piece.par_chunks_mut(block).enumerate().for_each_init(
                    || failure.record(init()),
                    |state, (b, sl)| {
                        if let Some(state) = state.as_mut() {
                            if !failure.happened() {
                                failure.record(f(state, base + b * block, sl));
                            }
                        }
                    },
                );
            });
            failure.take()
        })
    }

    /// Like `fill_blocks` with blocks of uneven size: segment s is `out[bounds[s]..bounds[s + 1]]`
    /// (`bounds` ascending, from 0 to `out.len()`); `f(s, start, segment)` fills it.
    pub fn fill_segments<O: Send>(
        &self,
        out: &mut [O],
        bounds: &[usize],
        f: impl Fn(usize, usize, &mut [O]) + Sync,
    ) -> Result<()> {
        self.try_fill_segments(out, bounds, |s, start, seg| {
            f(s, start, seg);
            Ok(())
        })
    }

    /// `fill_segments` for work that can fail; see `try_fill_blocks`.
    pub fn try_fill_segments<O: Send>(
        &self,
        out: &mut [O],
        bounds: &[usize],
        f: impl Fn(usize, usize, &mut [O]) -> Result<()> + Sync,
    ) -> Result<()> {
        self.try_fill_segments_with(out, bounds, || Ok(()), |_, s, start, seg| f(s, start, seg))
    }

    /// `fill_segments` with scratch space, as `fill_blocks_with`: `init()` makes a state that a
    /// worker reuses for the segments it runs one after another, passed to
    /// `f(state, s, start, segment)`; no result may depend on which segments shared a state.
    pub fn fill_segments_with<O: Send, S>(
        &self,
        out: &mut [O],
        bounds: &[usize],
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, usize, usize, &mut [O]) + Sync,
    ) -> Result<()> {
        self.try_fill_segments_with(
            out,
            bounds,
            || Ok(init()),
            |state, s, start, seg| {
                f(state, s, start, seg);
                Ok(())
            },
        )
    }

    /// `fill_segments_with` for work that can fail, `init` included; see `try_fill_blocks`.
    pub fn try_fill_segments_with<O: Send, S>(
        &self,
        out: &mut [O],
        bounds: &[usize],
        init: impl Fn() -> Result<S> + Sync,
        f: impl Fn(&mut S, usize, usize, &mut [O]) -> Result<()> + Sync,
    ) -> Result<()> {
        let mut segments = split_at_bounds(out, bounds);
        let mut remaining: &mut [&mut [O]] = &mut segments;
        let mut first = 0;
        let failure = FirstError::default();
        self.run_adaptive(bounds.len().saturating_sub(1), self.threads(), |range| {
            let (piece, tail) = std::mem::take(&mut remaining).split_at_mut(range.len());
            remaining = tail;
            let base = first;
            first += range.len();
            self.pool.workers.install(|| {
                piece.par_iter_mut().enumerate().for_each_init(
                    || failure.record(init()),
                    |state, (i, seg)| {
                        if let Some(state) = state.as_mut() {
                            if !failure.happened() {
                                failure.record(f(state, base + i, bounds[base + i], seg));
                            }
                        }
                    },
                );
            });
            failure.take()
        })
    }

    /// Runs resumable tasks in rounds until all have finished: in each round every unfinished task
    /// advances by `step(task, state, steps)` (in parallel; it returns whether the task finished),
    /// and the interrupt check runs between rounds. `steps` starts at 1 and adapts so that a round
    /// takes about `CHUNK_TARGET`. Nothing but the pauses depends on the rounds: a task runs the
    /// same steps in the same order however they are grouped.
    pub fn run_resumable<S: Send>(
        &self,
        states: &mut [S],
        step: impl Fn(usize, &mut S, usize) -> Result<bool> + Sync,
    ) -> Result<()> {
        let mut done = vec![false; states.len()];
        let mut steps = 1usize;
        let failure = FirstError::default();
        while done.iter().any(|&d| !d) {
            let t0 = Instant::now();
            self.pool.workers.install(|| {
                states
                    .par_iter_mut()
                    .zip(done.par_iter_mut())
                    .enumerate()
                    .filter(|(_, (_, d))| !**d)
                    .for_each(|(t, (state, d))| {
                        if let Some(finished) = failure.record(step(t, state, steps)) {
                            *d = finished;
                        }
                    });
            });
            failure.take()?;
            self.check()?;
            let took = t0.elapsed().as_secs_f64();
            let aim = if took > 0.0 {
                (steps as f64 * CHUNK_TARGET.as_secs_f64() / took) as usize
            } else {
                usize::MAX
            };
            steps = aim.clamp(1, steps.saturating_mul(16));
        }
        Ok(())
    }
}

impl Ctl<'_> {
    /// Runs `job`, work that cannot stop midway (a faer decomposition), on a thread of its own
    /// while the calling thread checks for interrupts every [`DETACHED_POLL`]: an interrupt
    /// returns at once, and the job then finishes in the background, its result dropped. The job
    /// owns its inputs for that reason. A panic in the job is an internal error.
    ///
    /// At most `threads()` such jobs run at a time in the process (jobs an interrupt left running
    /// count): a new one waits, interruptibly, for a slot, so repeated interrupts cannot pile up
    /// work beyond the thread count.
    pub fn run_detached<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> Result<R> {
        use std::sync::mpsc::{channel, RecvTimeoutError};
        loop {
            let running = DETACHED_RUNNING.load(AtomicOrdering::Acquire);
            if running < self.threads()
                && DETACHED_RUNNING
                    .compare_exchange(running, running + 1, AtomicOrdering::AcqRel, AtomicOrdering::Acquire)
                    .is_ok()
            {
                break;
            }
            std::thread::sleep(DETACHED_POLL);
            self.check()?;
        }
        /// Frees the slot when the job's thread ends (or was never started).
        struct Slot;
        impl Drop for Slot {
            fn drop(&mut self) {
                DETACHED_RUNNING.fetch_sub(1, AtomicOrdering::AcqRel);
            }
        }
        let slot = Slot;
        let (tx, rx) = channel();
        let unpin = self.pool.unpin.clone();
        std::thread::Builder::new()
            .name("repcompress-decomposition".into())
            .spawn(move || {
                if let Some(cpus) = unpin {
                    set_thread_cpus(&cpus);
                }
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                drop(slot); // before the caller hears of the result and may start another job
                let _ = tx.send(outcome); // the caller may have gone (interrupted)
            })
            .map_err(|e| CoreError::Internal(format!("cannot start a thread: {e}")))?;
        loop {
            match rx.recv_timeout(DETACHED_POLL) {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(payload)) => {
                    let msg = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".to_string());
                    return Err(CoreError::Internal(msg));
                }
                Err(RecvTimeoutError::Timeout) => self.check()?,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(CoreError::Internal(
                        "a decomposition thread ended without a result".into(),
                    ))
                }
            }
        }
    }
}

/// How often `run_detached` checks for an interrupt while its job runs.
const DETACHED_POLL: Duration = Duration::from_millis(50);

/// Jobs of `run_detached` whose thread is running.
static DETACHED_RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The first error of parallel work, kept until the calling thread picks it up.
#[derive(Default)]
pub(crate) struct FirstError {
    failed: AtomicBool,
    error: Mutex<Option<CoreError>>,
}

impl FirstError {
    /// The value of `r`, or None after storing its error (unless one is stored already).
    pub(crate) fn record<V>(&self, r: Result<V>) -> Option<V> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                let mut slot = lock(&self.error);
                if slot.is_none() {
                    *slot = Some(e);
                }
                self.failed.store(true, AtomicOrdering::Relaxed);
                None
            }
        }
    }

    pub(crate) fn happened(&self) -> bool {
        self.failed.load(AtomicOrdering::Relaxed)
    }

    pub(crate) fn take(&self) -> Result<()> {
        match lock(&self.error).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_pinned_only_when_there_is_one_per_cpu_and_the_variable_allows() {
        let cpus = [0, 2, 5];
        assert_eq!(pin_plan(3, &cpus, None), Some(vec![0, 2, 5]));
        assert_eq!(pin_plan(3, &cpus, Some("1")), Some(vec![0, 2, 5]));
        assert_eq!(pin_plan(3, &cpus, Some(" 0 ")), None);
        assert_eq!(pin_plan(2, &cpus, None), None); // spare CPUs: the OS places them
        assert_eq!(pin_plan(4, &cpus, None), None); // more workers than CPUs
        assert_eq!(pin_plan(1, &[3], None), None); // one worker: nothing to spread
        assert_eq!(pin_plan(2, &[], None), None); // the mask could not be read
    }

    #[test]
    fn a_pool_of_one_worker_per_cpu_runs_each_on_its_own_and_its_detached_threads_anywhere() {
        let allowed = allowed_cpus();
        #[cfg(target_os = "linux")]
        assert!(!allowed.is_empty(), "the affinity mask of a Linux thread is readable");
        let n = allowed.len();
        for (threads, env) in [(n, None), (n, Some("0")), (n + 1, None)] {
            let pool = Arc::new(Pool::build(threads, env).unwrap());
            let masks = pool.workers.broadcast(|_| allowed_cpus());
            // A thread started from a worker, as a decomposition is.
            let inner = Arc::clone(&pool);
            let detached = pool
                .workers
                .install(move || {
                    let ctl = Ctl {
                        pool: inner,
                        interrupt: &no_interrupt,
                    };
                    ctl.run_detached(allowed_cpus)
                })
                .unwrap();
            let pinned = cfg!(target_os = "linux") && threads >= 2 && threads == n && env.is_none();
            if pinned {
                let one_each: Vec<Vec<usize>> = allowed.iter().map(|&c| vec![c]).collect();
                assert_eq!(masks, one_each, "{threads} workers, {env:?}");
            } else {
                assert!(
                    masks.iter().all(|m| *m == allowed),
                    "{threads} workers, {env:?}: {masks:?}"
                );
            }
            assert_eq!(detached, allowed, "{threads} workers, {env:?}");
        }
    }

    #[test]
    fn fill_blocks_covers_every_item_once() {
        let ctl = Ctl::uninterruptible().unwrap();
        let mut out = vec![0usize; 10_007];
        ctl.fill_blocks(&mut out, 64, |start, sl| {
            for (j, o) in sl.iter_mut().enumerate() {
                *o = start + j;
            }
        })
        .unwrap();
        assert!(out.iter().enumerate().all(|(i, &v)| i == v));
        let bounds = [0, 3, 3, 100, 5000, 10_007];
        out.fill(0);
        ctl.fill_segments(&mut out, &bounds, |s, start, sl| {
            assert_eq!(start, bounds[s]);
            for (j, o) in sl.iter_mut().enumerate() {
                *o = start + j;
            }
        })
        .unwrap();
        assert!(out.iter().enumerate().all(|(i, &v)| i == v));
    }

    #[test]
    fn an_error_of_the_work_stops_it_and_is_returned() {
        let ctl = Ctl::uninterruptible().unwrap();
        let mut out = vec![0u8; 1 << 16];
        let r = ctl.try_fill_blocks(&mut out, 16, |start, sl| {
            if start == 4096 {
                return Err(CoreError::invalid("x", "block 256"));
            }
            sl.fill(1);
            Ok(())
        });
        assert_eq!(r, Err(CoreError::invalid("x", "block 256")));
        let bounds: Vec<usize> = (0..=64).map(|i| i * 1024).collect();
        let r = ctl.try_fill_segments(&mut out, &bounds, |s, _, _| {
            if s == 7 {
                Err(CoreError::invalid("x", "segment 7"))
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err(CoreError::invalid("x", "segment 7")));
        let r = ctl.try_fill_blocks_with(
            &mut out,
            16,
            || Err::<(), _>(CoreError::invalid("x", "init")),
            |_, _, _| Ok(()),
        );
        assert_eq!(r, Err(CoreError::invalid("x", "init")));
    }

    #[test]
    fn resumable_tasks_run_every_step_once_in_order() {
        let ctl = Ctl::uninterruptible().unwrap();
        // Task t has t + 1 steps; each records them in order.
        let mut states: Vec<Vec<usize>> = vec![Vec::new(); 9];
        ctl.run_resumable(&mut states, |t, done, steps| {
            for _ in 0..steps {
                if done.len() == t + 1 {
                    break;
                }
                done.push(done.len());
            }
            Ok(done.len() == t + 1)
        })
        .unwrap();
        for (t, done) in states.iter().enumerate() {
            assert_eq!(done, &(0..=t).collect::<Vec<_>>());
        }
    }

    #[test]
    fn detached_work_returns_its_value_or_stops_waiting_at_an_interrupt() {
        let ctl = Ctl::uninterruptible().unwrap();
        assert_eq!(ctl.run_detached(|| 6 * 7), Ok(42));
        assert!(matches!(
            ctl.run_detached(|| -> u8 { panic!("inside") }),
            Err(CoreError::Internal(m)) if m == "inside"
        ));
        let stop = || Err(CoreError::Interrupted);
        let ctl = Ctl::new(&stop).unwrap();
        let t0 = Instant::now();
        let r = ctl.run_detached(|| std::thread::sleep(Duration::from_secs(2)));
        assert_eq!(r, Err(CoreError::Interrupted));
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    }

    #[test]
    fn interrupt_stops_the_loop() {
        let stop = || Err(CoreError::Interrupted);
        let ctl = Ctl::new(&stop).unwrap();
        let mut out = vec![0u8; 1 << 20];
        let bounds: Vec<usize> = (0..=(1 << 16)).map(|i| i * 16).collect();
        let r = ctl.fill_segments(&mut out, &bounds, |_, _, sl| sl.fill(1));
        assert_eq!(r, Err(CoreError::Interrupted));
        assert!(out.contains(&0), "work should stop after the first chunk");
        out.fill(0);
        let r = ctl.fill_blocks(&mut out, 16, |_, sl| sl.fill(1));
        assert_eq!(r, Err(CoreError::Interrupted));
        assert!(out.contains(&0), "work should stop after the first chunk");
    }
}
