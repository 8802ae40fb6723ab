import ora, { type Ora } from 'ora';

/**
 * Progress of one long step (a LocalStack install, a replay's wait, a load test, a benchmark): on
 * a terminal an ora spinner with what it is doing, steps done and elapsed time, redrawn in place;
 * in CI or when output is piped, one plain line at the start and one at the end, nothing between,
 * so logs stay readable. Everything goes to stderr: stdout stays the command's result (`--json`).
 */
export interface Progress {
  /** What the step is doing or waiting for now (e.g. "waiting for 12 files"). */
  update(text: string): void;
  /** Steps done out of the total given at the start. */
  step(done: number, text?: string): void;
  succeed(text?: string): void;
  fail(text?: string): void;
}

export interface ProgressOptions {
  readonly total?: number;
  /** Where plain lines go (tests); stderr by default. */
  readonly write?: (line: string) => void;
  /** Force the mode (tests); by default interactive only on a TTY outside CI. */
  readonly interactive?: boolean;
}

export function interactiveTerminal(): boolean {
  const ci = process.env.CI;
  return Boolean(process.stderr.isTTY) && (!ci || ci === 'false' || ci === '0');
}

export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1_000);
  if (s < 60) return `${(ms / 1_000).toFixed(s < 10 ? 1 : 0)} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export function startProgress(label: string, options: ProgressOptions = {}): Progress {
  const started = Date.now();
  const total = options.total;
  let done = 0;
  let text = '';
  const describe = () =>
    [label, total !== undefined ? `${done}/${total}` : '', text, formatElapsed(Date.now() - started)]
      .filter(Boolean)
      .join(' · ');

  if (options.interactive ?? interactiveTerminal()) {
    const spinner: Ora = ora({ text: describe(), discardStdin: false }).start();
    // Elapsed time moves even when nothing else does: that is how one tells waiting from hanging.
    const timer = setInterval(() => {
      spinner.text = describe();
    }, 1_000);
    timer.unref();
    const end = (how: 'succeed' | 'fail', final?: string) => {
      clearInterval(timer);
      if (final !== undefined) text = final;
      spinner[how](describe());
    };
    return {
      update(next) {
        text = next;
        spinner.text = describe();
      },
      step(n, next) {
        done = n;
        if (next !== undefined) text = next;
        spinner.text = describe();
      },
      succeed: (final) => end('succeed', final),
      fail: (final) => end('fail', final),
    };
  }

  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  write(`${label}...`);
  return {
    update(next) {
      text = next;
    },
    step(n, next) {
      done = n;
      if (next !== undefined) text = next;
    },
    succeed(final) {
      if (final !== undefined) text = final;
      write(`${describe()}: done`);
    },
    fail(final) {
      if (final !== undefined) text = final;
      write(`${describe()}: FAILED`);
    },
  };
}

/** Runs work under a progress line, ending it as succeeded or failed with the work's outcome. */
export async function withProgress<T>(
  label: string,
  work: (progress: Progress) => Promise<T>,
  options: ProgressOptions = {},
): Promise<T> {
  const progress = startProgress(label, options);
  try {
    const result = await work(progress);
    progress.succeed();
    return result;
  } catch (error) {
    progress.fail(error instanceof Error ? error.message.split('\n')[0] : undefined);
    throw error;
  }
}
