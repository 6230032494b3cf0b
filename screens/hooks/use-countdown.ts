import { useEffect, useState } from 'react';

/** Whole seconds until `deadline` (epoch ms), rounded up, never below 0. */
export function secondsLeft(deadline: number, now = Date.now()): number {
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

/** "2:57": minutes and zero-padded seconds. */
export function formatCountdown(seconds: number): string {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

/**
 * The seconds left until `deadline`, re-rendering once a second. Each timer
 * is aimed just past the next whole second before the deadline rather than
 * repeating every 1000 ms, so timer drift never skips or repeats a second on
 * screen; at 0 it stops.
 */
export function useCountdown(deadline: number): number {
  const [left, setLeft] = useState(() => secondsLeft(deadline));
  useEffect(() => {
    let timer: NodeJS.Timeout | undefined;
    const schedule = () => {
      const now = Date.now();
      setLeft(secondsLeft(deadline, now));
      const remaining = deadline - now;
      if (remaining <= 0) return;
      // (remaining % 1000) ms from now the shown number drops by one; +5 ms lands safely past it.
      timer = setTimeout(schedule, (remaining % 1000 || 1000) + 5);
    };
    schedule();
    return () => clearTimeout(timer);
  }, [deadline]);
  return left;
}
