import { v7 } from 'uuid';

/**
 * Row ids are UUIDv7: time-ordered, so inserts append to the right edge of each primary-key
 * index (bulk loads stay fast) and ordering by id is ordering by creation for cursors.
 */
export const newId = (): string => v7();
