/**
 * Segment evaluation on PostgreSQL over a large tenant:
 *
 *   seed     N contacts (1,000,000; 50,000 with --quick) in one tenant, written by generate_series
 *            in a few statements: attributes (segment, renewal_date, ltv), tags, WhatsApp consent
 *            (channel-wide and the "tips" topic), a WhatsApp conversation with an inbound message
 *            for 40%, two sends per contact over the last year (30% opened, 10% clicked, 5%
 *            replied), purchases for 30% (product_a, _b or _c), plus a second tenant of N/10
 *            contacts so that every query must filter by tenant. Then VACUUM ANALYZE.
 *   measure  for three of the issue's example segments: countSegment, and streamSegment over the
 *            whole audience in batches of --batch (5,000) contacts with every column, each
 *            --repeats times (3); the table shows the median.
 *
 *   npm run bench:segments -- [--quick] [--contacts 1000000] [--batch 5000] [--repeats 3] [--explain]
 *
 * --explain prints EXPLAIN ANALYZE of the count and of the first stream window for all five
 * examples, which is how docs/performance.md judged the plans. PostgreSQL is DATABASE_URL
 * (default postgres://postgres@127.0.0.1:5432/test); the bench creates a database
 * rapport_bench_<random>_segments there and drops it. Results go to
 * bench/results/<date>-<host>-segments.json (-quick.json with --quick).
 */
import { parseArgs } from 'node:util';
import type { SegmentCondition } from '../src/core/segment.js';
import { migrate } from '../src/store/migrate.js';
import { openPostgres } from '../src/store/postgres.js';
import { prepareSegment, countSegment, streamSegment } from '../src/store/segments.js';
import { BenchDatabases, commit, machine, markdownTable, round, writeResult } from './lib.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    contacts: { type: 'string' },
    batch: { type: 'string', default: '5000' },
    repeats: { type: 'string', default: '3' },
    explain: { type: 'boolean', default: false },
  },
});
const N = Number(args.contacts ?? (args.quick ? 50_000 : 1_000_000));
const BATCH = Number(args.batch);
const REPEATS = Number(args.repeats);
for (const [name, v] of Object.entries({ contacts: N, batch: BATCH, repeats: REPEATS })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
}

const NOW = new Date('2026-03-02T10:00:00Z');

const EXAMPLES: Record<string, SegmentCondition> = {
  'no interaction in 180 days': { not: { last: 'interaction', op: 'within_last', value: '180d' } },
  'engagement score >= 0.3': { score: 'engagement', op: 'gte', value: 0.3 },
  'bought product_a': { event: 'purchase', where: { property: 'product', value: 'product_a' } },
  'renewal within 30 days': { attribute: 'renewal_date', op: 'within_next', value: '30d' },
  'premium and tips': { all: [{ attribute: 'segment', value: 'premium' }, { consent: 'whatsapp', topic: 'tips' }] },
};
const TIMED = ['no interaction in 180 days', 'engagement score >= 0.3', 'bought product_a'];

/** UUIDv7-shaped ids in row order, as the application writes them: id order is insertion order. */
const V7 = (i: string, base: string) => `(lpad(to_hex(${base} + ${i}), 12, '0') || '7' || substr(md5(${i}::text), 1, 3) || '8' || substr(md5(${i}::text), 4, 15))::uuid`;

async function seed(db: ReturnType<typeof openPostgres>, tenantId: string, n: number, base: number): Promise<void> {
  const now = NOW.toISOString();
  const b = String(base);
  await db.query(`insert into tenants (id, name) values ($1, 'segments bench') on conflict do nothing`, [tenantId]);
  // hashes of i pick each attribute, so a run is the same data every time
  await db.query(
    `insert into contacts (id, tenant_id, external_id, name, email, phone, attributes, tags, created_at, updated_at)
     select ${V7('i', b)}, $1, 'c' || i, 'Contact ' || i, 'c' || i || '@' || $3 || '.example', '+1415' || lpad((i % 10000000)::text, 7, '0'),
            jsonb_build_object(
              'segment', case when hashint4((i)::int) % 5 = 0 then 'premium' else 'basic' end,
              'renewal_date', to_char($2::timestamptz + (((hashint4((i + 1)::int)::bigint & 2147483647) % 730) - 365) * interval '1 day', 'YYYY-MM-DD'),
              'ltv', (hashint4((i + 2)::int)::bigint & 2147483647) % 5000),
            case when hashint4((i + 3)::int) % 10 = 0 then array['vip'] else '{}' end,
            $2::timestamptz - ((hashint4((i + 4)::int)::bigint & 2147483647) % 1000) * interval '1 day', $2::timestamptz
       from generate_series(1, $4::int) as i`,
    [tenantId, now, tenantId.slice(0, 8), n],
  );
  const contacts = `(select c.id, row_number() over (order by c.id) as i from contacts c where c.tenant_id = $1)`;
  await db.query(
    `insert into consent_state (tenant_id, contact_id, channel, topic, status, type, record_id, recorded_at)
     select $1, k.id, 'whatsapp', t.topic, case when hashint4((k.i::int + t.salt)::int) % 10 = 0 then 'revoked' else 'granted' end, 'express', gen_random_uuid(),
            $2::timestamptz - ((hashint4((k.i::int + t.salt + 1)::int)::bigint & 2147483647) % 400) * interval '1 day'
       from ${contacts} k, (values ('all', 10), ('tips', 20)) as t(topic, salt)
      where (hashint4((k.i::int + t.salt + 2)::int)::bigint & 2147483647) % 10 < case t.topic when 'all' then 7 else 3 end`,
    [tenantId, now],
  );
  await db.query(
    `insert into conversations (id, tenant_id, contact_id, channel, last_inbound_at, created_at, updated_at)
     select gen_random_uuid(), $1, k.id, 'whatsapp', $2::timestamptz - ((hashint4((k.i::int + 30)::int)::bigint & 2147483647) % (400 * 24)) * interval '1 hour', $2::timestamptz, $2::timestamptz
       from ${contacts} k where (hashint4((k.i::int + 31)::int)::bigint & 2147483647) % 10 < 4`,
    [tenantId, now],
  );
  await db.query(
    `insert into inbound_messages (id, tenant_id, contact_id, conversation_id, channel, provider, provider_message_id, from_address, to_address, text, received_at)
     select gen_random_uuid(), $1, v.contact_id, v.id, 'whatsapp', 'sandbox', v.id::text, 'x', 'y', 'hi', v.last_inbound_at from conversations v where v.tenant_id = $1`,
    [tenantId],
  );
  await db.query(
    `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, created_at, updated_at, sent_at, delivered_at, opened_at, clicked_at, replied_at)
     select gen_random_uuid(), $1, k.id, 'whatsapp', 'delivered', k.id::text || ':' || s, '{}', t.at, t.at, t.at, t.at,
            case when (hashint4((k.i::int * 2 + s + 40)::int)::bigint & 2147483647) % 100 < 30 then t.at + interval '1 hour' end,
            case when (hashint4((k.i::int * 2 + s + 40)::int)::bigint & 2147483647) % 100 < 10 then t.at + interval '1 hour' end,
            case when (hashint4((k.i::int * 2 + s + 40)::int)::bigint & 2147483647) % 100 < 5 then t.at + interval '2 hours' end
       from ${contacts} k cross join generate_series(1, 2) as s
       cross join lateral (select $2::timestamptz - ((hashint4((k.i::int * 2 + s + 41)::int)::bigint & 2147483647) % (365 * 24)) * interval '1 hour' as at) t`,
    [tenantId, now],
  );
  await db.query(
    `insert into events (id, tenant_id, contact_id, name, properties, occurred_at)
     select gen_random_uuid(), $1, k.id, 'purchase', jsonb_build_object('product', 'product_' || chr(97 + ((hashint4((k.i::int + 50 + s)::int)::bigint & 2147483647) % 3)::int), 'amount', (hashint4((k.i::int + 51 + s)::int)::bigint & 2147483647) % 500),
            $2::timestamptz - ((hashint4((k.i::int + 52 + s)::int)::bigint & 2147483647) % 365) * interval '1 day'
       from ${contacts} k cross join generate_series(1, 1 + (hashint4((k.i::int + 53)::int)::bigint & 2147483647) % 3) as s
      where (hashint4((k.i::int + 54)::int)::bigint & 2147483647) % 10 < 3`,
    [tenantId, now],
  );
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

const dbs = await BenchDatabases.open();
try {
  const name = await dbs.create('segments');
  const db = openPostgres({ connectionString: dbs.url(name), max: 2 });
  try {
    await migrate(db);
    const tenant = '01900000-0000-7000-8000-00000000b001';
    const other = '01900000-0000-7000-8000-00000000b002';
    console.error(`seeding ${N.toLocaleString('en-US')} contacts (+${Math.ceil(N / 10).toLocaleString('en-US')} in another tenant)…`);
    const seeded = await timed(async () => {
      await seed(db, other, Math.ceil(N / 10), 1_700_000_000_000);
      await seed(db, tenant, N, 1_750_000_000_000);
      await db.query('vacuum analyze');
    });
    const sizes = (
      await db.query<{ t: string; n: string }>(
        `select 'contacts' as t, count(*) as n from contacts union all select 'messages', count(*) from messages union all select 'events', count(*) from events
         union all select 'consent_state', count(*) from consent_state union all select 'conversations', count(*) from conversations`,
      )
    ).rows.map((r) => [r.t, Number(r.n)] as const);
    console.error(`seeded in ${round(seeded.ms / 1000, 1)} s: ${sizes.map(([t, n]) => `${t} ${n.toLocaleString('en-US')}`).join(', ')}`);

    if (args.explain) {
      const ids = (await db.query<{ id: string }>('select id from contacts where tenant_id = $1 order by id limit $2', [tenant, BATCH])).rows.map((r) => r.id);
      for (const [label, def] of Object.entries(EXAMPLES)) {
        const q = await prepareSegment(db, tenant, def, NOW);
        const count = await db.query<{ 'QUERY PLAN': string }>(`explain (analyze, costs off) select count(*) from contacts c where c.tenant_id = $1::uuid and ${q.where}`, q.params);
        // The first window of a stream, bound as streamSegment binds it.
        const w = await prepareSegment(db, tenant, def, NOW, true);
        const params = [...w.params];
        params[1] = ids;
        if (w.range) {
          params[w.range.first] = ids[0];
          params[w.range.last] = ids[ids.length - 1];
        }
        const page = await db.query<{ 'QUERY PLAN': string }>(
          `explain (analyze, costs off) select c.id from contacts c where c.tenant_id = $1::uuid and c.id = any($2::uuid[]) and ${w.where} order by c.id`,
          params,
        );
        console.log(`\n### ${label}\n-- count\n${count.rows.map((r) => r['QUERY PLAN']).join('\n')}\n-- first window of ${BATCH} contacts\n${page.rows.map((r) => r['QUERY PLAN']).join('\n')}`);
      }
    }

    const results: { segment: string; members: number; count_ms: number; stream_ms: number; batches: number; counts_ms: number[]; streams_ms: number[] }[] = [];
    for (const label of TIMED) {
      const def = EXAMPLES[label]!;
      const counts: number[] = [];
      const streams: number[] = [];
      let members = 0;
      let batches = 0;
      for (let r = 0; r < REPEATS; r++) {
        const c = await timed(() => countSegment(db, tenant, def, NOW));
        counts.push(c.ms);
        members = c.value;
        const s = await timed(async () => {
          let n = 0;
          let b = 0;
          for await (const batch of streamSegment(db, tenant, def, BATCH, { now: NOW })) {
            n += batch.length;
            b++;
          }
          return { n, b };
        });
        if (s.value.n !== members) throw new Error(`${label}: the stream gave ${s.value.n} contacts, the count ${members}`);
        streams.push(s.ms);
        batches = s.value.b;
      }
      results.push({ segment: label, members, count_ms: round(median(counts)), stream_ms: round(median(streams)), batches, counts_ms: counts.map((x) => round(x)), streams_ms: streams.map((x) => round(x)) });
      console.error(`${label}: ${members.toLocaleString('en-US')} members, count ${round(median(counts))} ms, stream ${round(median(streams))} ms`);
    }

    const others: { segment: string; members: number; count_ms: number }[] = [];
    for (const label of Object.keys(EXAMPLES).filter((l) => !TIMED.includes(l))) {
      const c = await timed(() => countSegment(db, tenant, EXAMPLES[label]!, NOW));
      others.push({ segment: label, members: c.value, count_ms: round(c.ms) });
    }

    console.log(`\nSegments over ${N.toLocaleString('en-US')} contacts on ${dbs.version} (median of ${REPEATS}; stream in batches of ${BATCH.toLocaleString('en-US')}, every column)\n`);
    console.log(
      markdownTable(
        ['segment', 'members', 'count ms', 'stream ms', 'contacts/s streamed'],
        [
          ...results.map((r) => [r.segment, r.members, r.count_ms, r.stream_ms, Math.round((r.members / r.stream_ms) * 1000)]),
          ...others.map((r) => [`${r.segment} (count only, one run)`, r.members, r.count_ms, '', '']),
        ],
      ),
    );
    const file = writeResult('segments', args.quick, {
      bench: 'segments',
      date: new Date().toISOString(),
      commit: commit(),
      machine: machine(),
      postgres: dbs.version,
      contacts: N,
      batch: BATCH,
      repeats: REPEATS,
      seed_s: round(seeded.ms / 1000, 1),
      tables: Object.fromEntries(sizes),
      results,
      count_only: others,
    });
    console.error(`\nwrote ${file}`);
  } finally {
    await db.close();
  }
} finally {
  await dbs.close();
}
