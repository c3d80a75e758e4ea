// Idle CPUs poll instead of halting while a bench runs (Linux PM QoS: /dev/cpu_dma_latency held
// at 0 µs by this process; the kernel drops the request when the process ends, however it ends).
//
// Why: on loopback the kernel delivers a written answer on the writer's CPU, and waking the reader
// is part of the writer's write. On a virtual machine whose idle vCPU has halted, that wake-up is
// an interrupt sent through the hypervisor, several µs charged to the writer — the server under
// test, once per answer, but only when the load generator had gone idle waiting for it. A slower
// server leaves it idle more often, so each of its answers costs more: measured on this project's
// 2-vCPU machine, minigate's GET /auth/session used 49-55 µs of CPU per request with halting idle
// vCPUs and 34 µs with polling ones, while the bare node:http server it is compared with, which
// keeps wrk busy, moved from 24 to 22 µs. Clients on other machines cost a server no such
// wake-up; with polling idle CPUs the ratios compare the servers' own work.
//
// MINIGATE_BENCH_IDLE=halt leaves the machine's idle states alone (to see the difference); the
// machine line of every bench says which it ran with. Without root (or without the device) the
// request cannot be made, and the line says so.
import { closeSync, openSync, writeSync } from 'node:fs';

function holdPolling() {
  if (process.env.MINIGATE_BENCH_IDLE === 'halt') return 'halt (MINIGATE_BENCH_IDLE=halt)';
  try {
    const fd = openSync('/dev/cpu_dma_latency', 'w');
    try {
      // A 32-bit latency in µs, native byte order; 0: no idle state that takes time to leave.
      writeSync(fd, Buffer.from(new Int32Array([0]).buffer));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    // Kept open (never closed here): the request holds as long as this process does.
    return 'poll (cpu_dma_latency 0)';
  } catch (error) {
    return `halt (cpu_dma_latency: ${error.code ?? error.message})`;
  }
}

/** How idle CPUs behaved during this bench: "poll (…)" or "halt (why)". */
export const IDLE = holdPolling();
