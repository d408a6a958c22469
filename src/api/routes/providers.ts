import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { SEND_CHANNELS } from '../../core/journey/definition.js';
import {
  createAccount,
  deleteAccount,
  getAccount,
  listAccounts,
  SecretKeyRequiredError,
  updateAccount,
  type AccountDeps,
  type ProviderAccountView,
} from '../../store/provider-accounts.js';
import type { RouteDeps } from '../app.js';
import { errorHandler, sendError } from '../errors.js';
import { errors, IdParams } from '../schemas/common.js';
import { ProviderAccount, ProviderAccountInput, ProviderAccountPatch, ProviderKind } from '../schemas/providers.js';

const DOCS = 'What each kind needs in credentials and config: docs/providers.md.';

/** Provider accounts: which provider sends each channel of the tenant, with which credentials. */
export const providerRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, deps) => {
  const { db, clock } = deps;
  const accounts: AccountDeps = { secrets: deps.secrets ?? null, adapters: deps.adapters ?? new Map() };

  // Without RAPPORT_SECRET_KEY nothing can be encrypted: a configuration problem of the server,
  // answered with its own code so an operator sees what to set.
  app.setErrorHandler((err: Error, req, reply) =>
    err instanceof SecretKeyRequiredError ? sendError(reply, 409, err.code, err.message) : errorHandler(err, req, reply),
  );

  /** The public base URL: the configured one, else the one this request came in on. */
  const base = (req: FastifyRequest) => (deps.publicUrl ?? `${req.protocol}://${req.host}`).replace(/\/+$/, '');
  const withWebhooks = (req: FastifyRequest, a: ProviderAccountView) => ({
    ...a,
    webhook_urls: accounts.adapters.get(a.kind)?.inbound === undefined ? null : { shared: `${base(req)}/webhooks/${a.kind}`, account: `${base(req)}/webhooks/${a.kind}/${a.id}` },
  });

  app.post(
    '/providers',
    {
      schema: {
        tags: ['providers'],
        summary: 'Add a provider account',
        description: `Credentials are encrypted with RAPPORT_SECRET_KEY (409 secret_key_required when it is not set) and never returned. The provider's own check of credentials and config is a 400 naming each field (credentials.… / config.…). A sender number or phone_number_id held by another account is a 409. ${DOCS}`,
        body: ProviderAccountInput,
        response: { 201: ProviderAccount, ...errors(400, 401, 409) },
      },
    },
    async (req, reply) => reply.status(201).send(withWebhooks(req, await createAccount(db, accounts, req.auth.tenantId, req.body, req.auth.actor, clock.now()))),
  );

  app.get(
    '/providers',
    {
      schema: {
        tags: ['providers'],
        summary: 'List provider accounts, credentials masked',
        description: 'By channel, then in the order the dispatcher tries them (priority, then creation).',
        querystring: Type.Object({ channel: Type.Optional(Type.Enum(SEND_CHANNELS)), kind: Type.Optional(ProviderKind) }, { additionalProperties: false }),
        response: { 200: Type.Object({ data: Type.Array(ProviderAccount) }), ...errors(400, 401) },
      },
    },
    async (req) => ({ data: (await listAccounts(db, accounts, req.auth.tenantId, req.query)).map((a) => withWebhooks(req, a)) }),
  );

  app.get(
    '/providers/:id',
    { schema: { tags: ['providers'], summary: 'Get a provider account, credentials masked', params: IdParams, response: { 200: ProviderAccount, ...errors(401, 404) } } },
    async (req) => withWebhooks(req, await getAccount(db, accounts, req.auth.tenantId, req.params.id)),
  );

  app.patch(
    '/providers/:id',
    {
      schema: {
        tags: ['providers'],
        summary: 'Change a provider account',
        description: `Sets the given fields. credentials and config replace the stored objects whole (send every secret again to change one), and the account is checked again as a whole. ${DOCS}`,
        params: IdParams,
        body: ProviderAccountPatch,
        response: { 200: ProviderAccount, ...errors(400, 401, 404, 409) },
      },
    },
    async (req) => withWebhooks(req, await updateAccount(db, accounts, req.auth.tenantId, req.params.id, req.body, req.auth.actor, clock.now())),
  );

  app.delete(
    '/providers/:id',
    {
      schema: {
        tags: ['providers'],
        summary: 'Delete a provider account',
        description: 'Its numbers and ids stop routing inbound webhooks at once; messages already sent through it keep their history.',
        params: IdParams,
        response: { 200: ProviderAccount, ...errors(401, 404) },
      },
    },
    async (req) => withWebhooks(req, await deleteAccount(db, accounts, req.auth.tenantId, req.params.id, req.auth.actor)),
  );
};
