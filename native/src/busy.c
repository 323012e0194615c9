/*
 * Busy polling: the decisions, kept apart from libuv so that they are plain
 * arithmetic on times and sizes (addon.cc turns them into a uv_idle handle).
 * The time is always given, never read here: the glue passes uv_hrtime(), or
 * a test's fake clock (BusyPoll's `clock` option), so the rules below are
 * tested without sleeping.
 *
 * Why: a packet that finds the daemon asleep in epoll_wait waits for it to
 * wake, and after a few milliseconds of sleep that wake-up is slow (on this
 * project's 2-vCPU VM, 10 ms between pings cost each hop about 10 µs more
 * than 1 ms between them). A ping through two weft nodes meets four such
 * wake-ups; the kernel's own VXLAN meets none. Polling instead of sleeping
 * takes them away, at the price of a core kept busy.
 *
 * 1. a batch was read: weft_busy_kick(now, packets, bytes).
 *    - a light batch (a few small packets: latency-bound traffic) restarts
 *      the window, and starts polling if it was off;
 *    - a heavy batch (more than WEFT_BUSY_LIGHT_PACKETS packets or
 *      WEFT_BUSY_LIGHT_BYTES bytes: bulk traffic) stops polling for
 *      WEFT_BUSY_SUSPEND_NS. Bulk traffic keeps the loop awake by itself,
 *      and a poller would only take CPU from the senders (measured on 2
 *      cores: one TCP stream fell from 13.5 to 7.9 Gbit/s with polling on).
 * 2. each loop turn while polling: weft_busy_tick(now). A turn that read
 *    nothing (no kick since the last turn) spent its time polling: counted.
 * 3. polling stops when the window passes without a light batch.
 *
 * The poller does not yield between turns: measured, sched_yield() gave
 * most of the gain back, as the poller kept stepping aside for the very
 * tasks whose packets it was waiting for.
 */
#include "weft.h"

void weft_busy_init(weft_busy_t *b, uint64_t window_ns) {
  b->window = window_ns;
  b->deadline = 0;
  b->suspended_until = 0;
  b->last = 0;
  b->active = 0;
  b->kicked = 0;
}

int weft_busy_kick(weft_busy_t *b, uint64_t now, uint32_t packets, uint64_t bytes, double *ctr) {
  if (packets > WEFT_BUSY_LIGHT_PACKETS || bytes > WEFT_BUSY_LIGHT_BYTES) {
    if (now >= b->suspended_until) ctr[WEFT_BUSY_SUSPENDED]++;
    b->suspended_until = now + WEFT_BUSY_SUSPEND_NS;
    b->deadline = now; /* a poller still on stops at its next turn */
    b->kicked = 1;     /* this turn was reading, not polling */
    return 0;
  }
  if (now < b->suspended_until || b->window == 0) return 0;
  b->deadline = now + b->window;
  b->kicked = 1; /* the turn that called us is reading, not polling */
  if (b->active) {
    ctr[WEFT_BUSY_CAUGHT]++;
    return 0;
  }
  b->active = 1;
  b->last = now;
  return 1;
}

int weft_busy_tick(weft_busy_t *b, uint64_t now, double *ctr) {
  if (!b->active) return WEFT_BUSY_STOP;
  if (!b->kicked && now > b->last) ctr[WEFT_BUSY_NS] += (double)(now - b->last);
  b->kicked = 0;
  b->last = now;
  if (now >= b->deadline) {
    b->active = 0;
    return WEFT_BUSY_STOP;
  }
  return WEFT_BUSY_GO;
}
