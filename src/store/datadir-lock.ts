import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * PGlite's data folder belongs to one process: two processes writing it corrupt it. The owner
 * writes rapport.lock (created exclusively) holding its pid and, for a server, its URL and a
 * local admin token, so CLI commands can go through the running server instead.
 */
export interface LockInfo {
  pid: number;
  /** set when the owner is a server */
  url?: string;
  /** lets the local CLI act through the server; the file is readable by its owner only */
  adminToken?: string;
  startedAt: string;
}

export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: LockInfo,
  ) {
    super(
      `the data folder ${dataDir} is in use by another Rapport process (pid ${holder.pid}${holder.url ? `, serving ${holder.url}` : ''}); ` +
        'stop it first, or point RAPPORT_DATA_DIR at another folder',
    );
    this.name = 'DataDirInUseError';
  }
}

const LOCK_FILE = 'rapport.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The current holder of the folder, if a live process holds it. */
export function readLock(dataDir: string): LockInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')) as LockInfo;
    return alive(info.pid) ? info : undefined;
  } catch {
    return undefined;
  }
}

export interface DataDirLock {
  /** Adds the server's URL once it listens. */
  update(info: Partial<LockInfo>): void;
  release(): void;
}

/** Takes the folder for this process, or throws DataDirInUseError naming who holds it. */
export function lockDataDir(dataDir: string, info: Omit<LockInfo, 'pid' | 'startedAt'> = {}): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  let current: LockInfo = { ...info, pid: process.pid, startedAt: new Date().toISOString() };
  const write = (flag: 'wx' | 'w') => {
    const fd = openSync(path, flag, 0o600);
    try {
      writeSync(fd, JSON.stringify(current));
    } finally {
      closeSync(fd);
    }
  };
  const inUse = () => {
    const holder = readLock(dataDir);
    return holder ? new DataDirInUseError(dataDir, holder) : undefined;
  };
  try {
    write('wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const busy = inUse();
    if (busy) throw busy;
    // The previous owner died without releasing; its lock is stale. If another process takes the
    // folder between the unlink and our create, the exclusive create fails and we report it.
    unlinkSync(path);
    try {
      write('wx');
    } catch (again) {
      throw inUse() ?? again;
    }
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try {
      unlinkSync(path);
    } catch {
      /* already gone */
    }
  };
  process.once('exit', release);
  return {
    update(more) {
      current = { ...current, ...more };
      write('w');
    },
    release() {
      process.off('exit', release);
      release();
    },
  };
}
