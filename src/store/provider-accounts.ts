import { PROVIDER_KINDS, type ChannelAdapter, type ProviderAccount, type ProviderKind, type RouteKeys } from '../channels/types.js';
import { EMAIL, toE164 } from '../core/contact.js';
import { ConflictError, InputError, NotFoundError, type FieldProblem } from '../core/errors.js';
import type { SendChannel } from '../core/journey/definition.js';
import type { SecretBox } from '../core/secrets.js';
import { writeAudit } from './audit.js';
import { pgErrorCode, UNIQUE_VIOLATION, type Db, type Queryable } from './db.js';
import { newId } from './ids.js';

/**
 * A tenant's provider accounts: which provider sends each channel, in which order, with which
 * secrets. Credentials are sealed with the SecretBox before they reach the database and never
 * leave through the API (views show `••••` and the last 4 characters). Each account also owns
 * rows in provider_routes: the numbers, addresses and provider-side ids an inbound webhook is
 * routed by, so a number belongs to one account of one tenant, across all tenants.
 *
 * PATCH semantics: `credentials` and `config`, when given, replace the stored object as a whole
 * (no merge), so a key removed from config is gone and every secret is sent again; the account
 * is then checked by its adapter as if it were new. The kind cannot change: a different provider
 * is a different account.
 */

export interface AccountDeps {
  /** Null when RAPPORT_SECRET_KEY is not set: accounts can then be read but not written. */
  secrets: SecretBox | null;
  adapters: ReadonlyMap<ProviderKind, ChannelAdapter>;
}

export interface ProviderAccountInput {
  name: string;
  kind: string;
  /** Defaults to the adapter's first channel. */
  channel?: string;
  priority?: number;
  enabled?: boolean;
  credentials: Record<string, string>;
  config?: Record<string, unknown>;
}

export type ProviderAccountPatch = Partial<Omit<ProviderAccountInput, 'kind'>>;

/** An account as the API shows it: credentials masked. */
export interface ProviderAccountView {
  id: string;
  name: string;
  kind: ProviderKind;
  channel: SendChannel;
  priority: number;
  enabled: boolean;
  credentials: Record<string, string>;
  config: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

/** Creating or changing an account needs RAPPORT_SECRET_KEY; the API answers 409 secret_key_required. */
export class SecretKeyRequiredError extends Error {
  readonly code = 'secret_key_required';
  constructor(doing: string) {
    super(`${doing} needs a secret key to encrypt provider credentials: set RAPPORT_SECRET_KEY (at least 32 characters, e.g. \`openssl rand -base64 32\`) and restart Rapport`);
    this.name = 'SecretKeyRequiredError';
  }
}

interface AccountRow {
  id: string;
  tenant_id: string;
  name: string;
  kind: ProviderKind;
  channel: SendChannel;
  priority: number;
  enabled: boolean;
  credentials: string;
  config: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id, tenant_id, name, kind, channel, priority, enabled, credentials, config, created_at, updated_at';
const NAME = /^\S(.*\S)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `••••` and the last 4 characters; only `••••` for a value too short to show any of it. */
export function maskSecret(value: string): string {
  return value.length >= 12 ? `••••${value.slice(-4)}` : '••••';
}

function view(row: AccountRow, credentials: Record<string, string> | null): ProviderAccountView {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    channel: row.channel,
    priority: row.priority,
    enabled: row.enabled,
    credentials: Object.fromEntries(Object.entries(credentials ?? {}).map(([k, v]) => [k, maskSecret(v)])),
    config: row.config,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** The masked view; with no SecretBox the field names are unknown and credentials come back empty. */
function maskedView(row: AccountRow, box: SecretBox | null): ProviderAccountView {
  if (!box) return view(row, null);
  try {
    return view(row, box.openJson(row.credentials));
  } catch {
    // Sealed with another key: the view still lists the account, the dispatcher will say why it fails.
    return view(row, null);
  }
}

// ---- routes: the numbers, addresses and ids an inbound webhook finds its account by ----

interface RouteKey {
  key: string;
  /** The config field it came from, for a 409 that names it. */
  field: string;
  shown: string;
}

/**
 * A sender address in its routing form: E.164 for a number (a `whatsapp:` prefix dropped), the
 * bare address lower-cased for e-mail (`Acme <news@acme.example>` gives news@acme.example).
 * A short code stays as its digits. Null for an alphanumeric sender id ("ACME"): it cannot
 * receive, so nothing routes to it.
 */
export function routingAddress(raw: string): { address: string | null } | { problem: string } {
  let value = raw.trim().replace(/^whatsapp:/i, '');
  if (value.includes('@')) {
    value = (/<([^<>]+)>\s*$/.exec(value)?.[1] ?? value).trim().toLowerCase();
    return EMAIL.test(value) ? { address: value } : { problem: 'is not an e-mail address' };
  }
  if (/\p{L}/u.test(value)) return { address: null };
  // A short code (US 5-6 digits, elsewhere 3-8) receives replies but is no E.164 number.
  if (/^\d{3,8}$/.test(value)) return { address: value };
  const phone = toE164(value);
  if ('e164' in phone) return { address: phone.e164 };
  // A well-formed number outside libphonenumber's ranges (Ofcom's drama numbers, a new range)
  // still routes: the provider reports it in the same digits.
  const digits = value.replace(/[\s().-]/g, '');
  return /^\+[1-9]\d{6,14}$/.test(digits) ? { address: digits } : { problem: phone.problem };
}

/** The provider_routes keys of an account's config, or the problems that stop it being saved. */
export function accountRouteKeys(config: Record<string, unknown>): { keys: RouteKey[]; problems: FieldProblem[] } {
  const keys: RouteKey[] = [];
  const problems: FieldProblem[] = [];
  const address = (field: string, value: unknown) => {
    if (typeof value !== 'string') return problems.push({ field, message: 'must be a string' });
    const r = routingAddress(value);
    if ('problem' in r) return problems.push({ field, message: `${JSON.stringify(value)} ${r.problem}` });
    if (r.address && !keys.some((k) => k.key === `address:${r.address}`)) keys.push({ key: `address:${r.address}`, field, shown: r.address });
  };
  if (config.from !== undefined && config.from !== null) address('config.from', config.from);
  if (config.numbers !== undefined && config.numbers !== null) {
    if (!Array.isArray(config.numbers)) problems.push({ field: 'config.numbers', message: 'must be a list of phone numbers' });
    else config.numbers.forEach((n, i) => address(`config.numbers[${i}]`, n));
  }
  if (config.from_email !== undefined && config.from_email !== null) address('config.from_email', config.from_email);
  const external = config.phone_number_id;
  if (external !== undefined && external !== null) {
    if ((typeof external !== 'string' && typeof external !== 'number') || String(external).trim() === '') {
      problems.push({ field: 'config.phone_number_id', message: 'must be a string' });
    } else {
      const id = String(external).trim();
      keys.push({ key: `external:${id}`, field: 'config.phone_number_id', shown: id });
    }
  }
  return { keys, problems };
}

/** Replaces the account's routes; a key held by any other account, of any tenant, is a 409. */
async function writeRoutes(tx: Queryable, account: { id: string; tenant_id: string; kind: string }, keys: RouteKey[]): Promise<void> {
  await tx.query('delete from provider_routes where account_id = $1', [account.id]);
  if (!keys.length) return;
  // ON CONFLICT DO NOTHING waits for a concurrent writer of the same key, then reports it taken.
  const { rows } = await tx.query<{ key: string }>(
    `insert into provider_routes (kind, key, account_id, tenant_id)
     select $1, k, $2, $3 from unnest($4::text[]) as k
     on conflict (kind, key) do nothing returning key`,
    [account.kind, account.id, account.tenant_id, keys.map((k) => k.key)],
  );
  const written = new Set(rows.map((r) => r.key));
  const taken = keys.find((k) => !written.has(k.key));
  if (taken) {
    const what = taken.key.startsWith('external:') ? `phone_number_id ${taken.shown}` : taken.shown;
    // Which account, and so which tenant, holds it is not said: that would tell one tenant about another.
    throw new ConflictError(`${what} belongs to another ${account.kind} provider account; a number or address can receive for one account only`, taken.field);
  }
}

// ---- validation ----

interface Checked {
  kind: ProviderKind;
  channel: SendChannel;
  adapter: ChannelAdapter;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks an account as it would be stored, in the order a reader fixes it: the shape of each
 * field, then the adapter's own check of credentials and config, then the routing addresses.
 */
function checkAccount(deps: AccountDeps, a: { name: string; kind: string; channel?: string; priority: number; credentials: unknown; config: unknown }): Checked & { keys: RouteKey[] } {
  const problems: FieldProblem[] = [];
  if (typeof a.name !== 'string' || a.name.length < 1 || a.name.length > 100 || !NAME.test(a.name)) {
    problems.push({ field: 'name', message: 'must be 1 to 100 characters, not starting or ending with a space' });
  }
  let adapter: ChannelAdapter | undefined;
  if (!(PROVIDER_KINDS as readonly string[]).includes(a.kind)) {
    problems.push({ field: 'kind', message: `must be one of ${PROVIDER_KINDS.join(', ')}` });
  } else {
    adapter = deps.adapters.get(a.kind as ProviderKind);
    if (!adapter) problems.push({ field: 'kind', message: `no adapter for ${a.kind} in this Rapport build` });
  }
  const channel = (a.channel ?? adapter?.channels[0]) as SendChannel | undefined;
  if (adapter && (!channel || !adapter.channels.includes(channel))) {
    problems.push({ field: 'channel', message: `${a.kind} sends ${adapter.channels.join(', ')}, not ${a.channel}` });
  }
  if (!Number.isInteger(a.priority) || a.priority < 0 || a.priority > 1000) problems.push({ field: 'priority', message: 'must be an integer from 0 to 1000' });
  const credentialsOk = isPlainObject(a.credentials) && Object.values(a.credentials).every((v) => typeof v === 'string');
  if (!credentialsOk) problems.push({ field: 'credentials', message: 'must be an object of strings' });
  if (!isPlainObject(a.config)) problems.push({ field: 'config', message: 'must be an object' });
  if (problems.length) throw new InputError(problems);

  const credentials = a.credentials as Record<string, string>;
  const config = a.config as Record<string, unknown>;
  const adapterProblems = [...adapter!.check(credentials, config)];
  const kr = config.keyword_replies;
  if (kr !== undefined && kr !== 'rapport' && kr !== 'provider') {
    adapterProblems.push({ field: 'config.keyword_replies', message: 'must be "rapport" (Rapport answers STOP, START and HELP) or "provider" (the provider does)' });
  }
  const routes = accountRouteKeys(config);
  const all = [...adapterProblems, ...routes.problems.filter((p) => !adapterProblems.some((q) => q.field === p.field))];
  if (all.length) throw new InputError(all);
  return { kind: a.kind as ProviderKind, channel: channel!, adapter: adapter!, keys: routes.keys };
}

function requireBox(deps: AccountDeps, doing: string): SecretBox {
  if (!deps.secrets) throw new SecretKeyRequiredError(doing);
  return deps.secrets;
}

function nameTaken(err: unknown, name: string): never {
  if (pgErrorCode(err) === UNIQUE_VIOLATION) throw new ConflictError(`a provider account named ${JSON.stringify(name)} already exists`, 'name');
  throw err;
}

// ---- the API's operations ----

export async function createAccount(db: Db, deps: AccountDeps, tenantId: string, input: ProviderAccountInput, actor: string, now: Date): Promise<ProviderAccountView> {
  const box = requireBox(deps, 'creating a provider account');
  const config = input.config ?? {};
  const checked = checkAccount(deps, { ...input, priority: input.priority ?? 100, config });
  const row = await db
    .transaction(async (tx) => {
      const { rows } = await tx.query<AccountRow>(
        `insert into provider_accounts (id, tenant_id, name, kind, channel, priority, enabled, credentials, config, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) returning ${COLUMNS}`,
        [newId(), tenantId, input.name, checked.kind, checked.channel, input.priority ?? 100, input.enabled ?? true, box.sealJson(input.credentials), JSON.stringify(config), now],
      );
      const created = rows[0]!;
      await writeRoutes(tx, created, checked.keys);
      await writeAudit(tx, {
        tenantId,
        actor,
        action: 'provider_account.created',
        entityType: 'provider_account',
        entityId: created.id,
        data: { name: created.name, kind: created.kind, channel: created.channel, credential_fields: Object.keys(input.credentials) },
      });
      return created;
    })
    .catch((err: unknown) => nameTaken(err, input.name));
  invalidateAccountCache(db);
  return view(row, input.credentials);
}

async function lockAccount(db: Queryable, tenantId: string, id: string): Promise<AccountRow> {
  const { rows } = await db.query<AccountRow>(`select ${COLUMNS} from provider_accounts where tenant_id = $1 and id = $2 for update`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('provider account');
  return rows[0];
}

/** Sets the given fields; credentials and config, when given, replace the stored ones whole. */
export async function updateAccount(
  db: Db,
  deps: AccountDeps,
  tenantId: string,
  id: string,
  patch: ProviderAccountPatch,
  actor: string,
  now: Date,
): Promise<ProviderAccountView> {
  const row = await db
    .transaction(async (tx) => {
      const current = await lockAccount(tx, tenantId, id);
      const box = requireBox(deps, 'changing a provider account');
      let credentials: Record<string, string>;
      if (patch.credentials !== undefined) credentials = patch.credentials;
      else {
        try {
          credentials = box.openJson(current.credentials);
        } catch (err) {
          throw new ConflictError(`the stored credentials cannot be read (${(err as Error).message}); send credentials again to replace them`, 'credentials');
        }
      }
      const next = {
        name: patch.name ?? current.name,
        kind: current.kind,
        channel: patch.channel ?? current.channel,
        priority: patch.priority ?? current.priority,
        enabled: patch.enabled ?? current.enabled,
        credentials,
        config: patch.config ?? current.config,
      };
      const checked = checkAccount(deps, next);
      const { rows } = await tx.query<AccountRow>(
        `update provider_accounts set name = $3, channel = $4, priority = $5, enabled = $6, credentials = $7, config = $8, updated_at = $9
          where tenant_id = $1 and id = $2 returning ${COLUMNS}`,
        [
          tenantId,
          id,
          next.name,
          checked.channel,
          next.priority,
          next.enabled,
          patch.credentials !== undefined ? box.sealJson(credentials) : current.credentials,
          JSON.stringify(next.config),
          now,
        ],
      );
      await writeRoutes(tx, current, checked.keys);
      await writeAudit(tx, {
        tenantId,
        actor,
        action: 'provider_account.updated',
        entityType: 'provider_account',
        entityId: id,
        data: { name: next.name, kind: current.kind, channel: checked.channel, fields: Object.keys(patch) },
      });
      return { row: rows[0]!, credentials };
    })
    .catch((err: unknown) => nameTaken(err, patch.name ?? ''));
  invalidateAccountCache(db);
  return view(row.row, row.credentials);
}

/** Deletes the account and its routes; inbound webhooks for its numbers stop finding a tenant. */
export async function deleteAccount(db: Db, deps: Pick<AccountDeps, 'secrets'>, tenantId: string, id: string, actor: string): Promise<ProviderAccountView> {
  const row = await db.transaction(async (tx) => {
    const current = await lockAccount(tx, tenantId, id);
    await tx.query('delete from provider_accounts where tenant_id = $1 and id = $2', [tenantId, id]);
    await writeAudit(tx, {
      tenantId,
      actor,
      action: 'provider_account.deleted',
      entityType: 'provider_account',
      entityId: id,
      data: { name: current.name, kind: current.kind, channel: current.channel },
    });
    return current;
  });
  invalidateAccountCache(db);
  return maskedView(row, deps.secrets);
}

export async function getAccount(db: Queryable, deps: Pick<AccountDeps, 'secrets'>, tenantId: string, id: string): Promise<ProviderAccountView> {
  const { rows } = await db.query<AccountRow>(`select ${COLUMNS} from provider_accounts where tenant_id = $1 and id = $2`, [tenantId, id]);
  if (!rows[0]) throw new NotFoundError('provider account');
  return maskedView(rows[0], deps.secrets);
}

/** The tenant's accounts, by channel and then in the order the dispatcher tries them. */
export async function listAccounts(
  db: Queryable,
  deps: Pick<AccountDeps, 'secrets'>,
  tenantId: string,
  f: { channel?: SendChannel; kind?: ProviderKind } = {},
): Promise<ProviderAccountView[]> {
  const { rows } = await db.query<AccountRow>(
    `select ${COLUMNS} from provider_accounts
      where tenant_id = $1 and ($2::text is null or channel = $2) and ($3::text is null or kind = $3)
      order by channel, priority, id`,
    [tenantId, f.channel ?? null, f.kind ?? null],
  );
  return rows.map((r) => maskedView(r, deps.secrets));
}

// ---- for the dispatcher and the inbound routes: decrypted accounts ----

function decrypt(row: AccountRow, box: SecretBox | null): ProviderAccount {
  if (!box) throw new SecretKeyRequiredError(`using provider account ${JSON.stringify(row.name)}`);
  let credentials: Record<string, string>;
  try {
    credentials = box.openJson(row.credentials);
  } catch (err) {
    throw new Error(`provider account ${JSON.stringify(row.name)} (${row.id}): its credentials cannot be read: ${(err as Error).message}`, { cause: err });
  }
  return Object.freeze({
    id: row.id,
    tenant_id: row.tenant_id,
    name: row.name,
    kind: row.kind,
    channel: row.channel,
    priority: row.priority,
    credentials: Object.freeze(credentials),
    config: Object.freeze(row.config),
  });
}

/**
 * How long loadAccounts trusts what it read. The dispatcher asks for every message it sends;
 * writes made through this process clear the cache at once, but an account changed by another
 * process (another API server, a worker) is seen up to this long after.
 */
export const ACCOUNT_CACHE_TTL_MS = 30_000;

const accountCache = new WeakMap<object, Map<string, { until: number; accounts: readonly ProviderAccount[] }>>();

function invalidateAccountCache(db: object): void {
  accountCache.delete(db);
}

/**
 * The tenant's enabled accounts for a channel, credentials decrypted, in the order to try them
 * (priority, then id). Throws when an account's credentials cannot be decrypted (no key, or
 * another key): sending with half the accounts would hide the misconfiguration.
 */
export async function loadAccounts(db: Queryable, box: SecretBox | null, tenantId: string, channel: SendChannel): Promise<readonly ProviderAccount[]> {
  const key = `${tenantId}:${channel}`;
  let byKey = accountCache.get(db);
  const hit = byKey?.get(key);
  if (hit && hit.until > performance.now()) return hit.accounts;
  const { rows } = await db.query<AccountRow>(
    `select ${COLUMNS} from provider_accounts where tenant_id = $1 and channel = $2 and enabled order by priority, id`,
    [tenantId, channel],
  );
  const accounts = Object.freeze(rows.map((r) => decrypt(r, box)));
  if (!byKey) accountCache.set(db, (byKey = new Map()));
  byKey.set(key, { until: performance.now() + ACCOUNT_CACHE_TTL_MS, accounts });
  return accounts;
}

/**
 * Whether the provider answers STOP, START and HELP itself, so Rapport must not answer too: the
 * account's `keyword_replies`, by default "provider" for Twilio SMS numbers (Twilio's Advanced
 * Opt-Out answers them unless switched off) and "rapport" for everything else.
 */
export function providerAnswersKeywords(account: Pick<ProviderAccount, 'kind' | 'config'>): boolean {
  const set = account.config.keyword_replies;
  if (set === 'provider' || set === 'rapport') return set === 'provider';
  return account.kind === 'twilio';
}

/**
 * The account an inbound webhook belongs to, among the given kinds (in order of preference when a
 * key is held under several, e.g. one number for SMS and WhatsApp), or null. An account id from
 * the URL is taken alone; otherwise the provider-side id, then the receiving address. Disabled
 * accounts are found too: replies and STOPs to a sender taken out of rotation still count.
 */
export async function findAccountByRoute(db: Queryable, box: SecretBox | null, kinds: readonly ProviderKind[], keys: RouteKeys): Promise<ProviderAccount | null> {
  if (!kinds.length) return null;
  if (keys.account_id !== undefined) {
    if (!UUID.test(keys.account_id)) return null;
    const { rows } = await db.query<AccountRow>(`select ${COLUMNS} from provider_accounts where id = $1 and kind = any($2::text[])`, [keys.account_id, kinds]);
    return rows[0] ? decrypt(rows[0], box) : null;
  }
  const candidates: string[] = [];
  if (keys.external_id) candidates.push(`external:${keys.external_id.trim()}`);
  if (keys.address) {
    const r = routingAddress(keys.address);
    candidates.push(`address:${'address' in r && r.address ? r.address : keys.address.trim().toLowerCase()}`);
  }
  for (const key of candidates) {
    const { rows } = await db.query<AccountRow>(
      `select ${COLUMNS.split(', ').map((c) => `a.${c}`).join(', ')}
         from provider_routes r join provider_accounts a on a.id = r.account_id
        where r.kind = any($1::text[]) and r.key = $2
        order by array_position($1::text[], r.kind) limit 1`,
      [kinds, key],
    );
    if (rows[0]) return decrypt(rows[0], box);
  }
  return null;
}
