import type { SecretBox } from '../core/secrets.js';
import type { ActionWebhooks } from '../engine/dispatcher.js';
import { SandboxProvider, sandboxRegistry } from '../engine/providers.js';
import { guardedRequester, type PrivateAllowList } from '../engine/webhook-guard.js';
import type { Db } from '../store/db.js';
import { loadAccounts } from '../store/provider-accounts.js';
import { builtInAdapters } from './adapters/index.js';
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
  opts: { secrets: SecretBox | null; publicUrl?: string | null; processes?: number; sandbox?: SandboxProvider; webhookAllowPrivate?: PrivateAllowList },
): DeliverySetup {
  const sandbox = opts.sandbox ?? new SandboxProvider();
  const adapters = builtInAdapters(sandbox);
  const router = new ProviderRouter({
    adapters,
    accounts: async (tenantId, channel) => [...(await loadAccounts(db, opts.secrets, tenantId, channel))],
    fallback: sandboxRegistry(sandbox),
    publicUrl: opts.publicUrl ?? null,
    processes: opts.processes,
  });
  const actionWebhooks: ActionWebhooks = {
    request: guardedRequester({ allowPrivate: opts.webhookAllowPrivate }),
    // The account the webhook channel would send with; during a rotation both secrets sign.
    async secrets(tenantId) {
      const account = (await loadAccounts(db, opts.secrets, tenantId, 'webhook')).find((a) => a.kind === 'webhook');
      return account ? [account.credentials.signing_secret, account.credentials.previous_signing_secret].filter((s): s is string => !!s) : [];
    },
  };
  return { router, adapters, sandbox, email: emailPreparer({ secrets: opts.secrets, publicUrl: opts.publicUrl ?? null }), actionWebhooks };
}
