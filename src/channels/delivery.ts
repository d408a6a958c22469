import type { SecretBox } from '../core/secrets.js';
import type { ActionWebhooks } from '../engine/dispatcher.js';
import { SandboxProvider, sandboxRegistry } from '../engine/providers.js';
import { guardedRequester, type HostLookup, type PrivateAllowList } from './webhook-guard.js';
import type { Db } from '../store/db.js';
import { loadAccounts } from '../store/provider-accounts.js';
import { builtInAdapters } from './adapters/index.js';
import { guardedWebhookAdapter } from './adapters/webhook.js';
import { emailPreparer, type EmailPreparer } from './email-prepare.js';
import { ProviderRouter } from './router.js';
import type { ChannelAdapter, ProviderKind } from './types.js';

export interface DeliverySetup {
  router: ProviderRouter;
  adapters: ReadonlyMap<ProviderKind, ChannelAdapter>;
  sandbox: SandboxProvider;
  /** Composes each e-mail (MJML, text part, footer, signed tracking and unsubscribe links) before it is sent. */
  email: EmailPreparer;
  /** Journey action webhooks: guarded against internal destinations, signed with the tenant's webhook account. */
  actionWebhooks: ActionWebhooks;
}

/**
 * What the server and `rapport worker` send through: the tenant's provider accounts with
 * failover, circuits and sender throughput, and the sandbox for channels without an account.
 */
export function deliveryFor(
  db: Db,
  opts: {
    secrets: SecretBox | null;
    publicUrl?: string | null;
    processes?: number;
    sandbox?: SandboxProvider;
    webhookAllowPrivate?: PrivateAllowList;
    /** The resolver the webhook guard checks; the system's unless a test stubs it. */
    webhookLookup?: HostLookup;
  },
): DeliverySetup {
  const sandbox = opts.sandbox ?? new SandboxProvider();
  // Every call to a tenant-supplied URL (action webhooks, the webhook channel, result webhooks,
  // which go out on that channel) goes through one guard with the operator's allow-list.
  const guarded = guardedRequester({ allowPrivate: opts.webhookAllowPrivate, lookup: opts.webhookLookup });
  const adapters = new Map(builtInAdapters(sandbox)).set('webhook', guardedWebhookAdapter(guarded));
  const router = new ProviderRouter({
    adapters,
    accounts: async (tenantId, channel) => [...(await loadAccounts(db, opts.secrets, tenantId, channel))],
    fallback: sandboxRegistry(sandbox),
    publicUrl: opts.publicUrl ?? null,
    processes: opts.processes,
  });
  const actionWebhooks: ActionWebhooks = {
    request: guarded,
    // The account the webhook channel would send with; during a rotation both secrets sign.
    async secrets(tenantId) {
      const account = (await loadAccounts(db, opts.secrets, tenantId, 'webhook')).find((a) => a.kind === 'webhook');
      return account ? [account.credentials.signing_secret, account.credentials.previous_signing_secret].filter((s): s is string => !!s) : [];
    },
  };
  return { router, adapters, sandbox, email: emailPreparer({ secrets: opts.secrets, publicUrl: opts.publicUrl ?? null }), actionWebhooks };
}
