import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino, type Logger } from 'pino';
import type { ChannelAdapter, ProviderKind } from '../channels/types.js';
import type { EmbeddingsClient } from '../core/embeddings.js';
import type { SecretBox } from '../core/secrets.js';
import type { Clock } from '../engine/clock.js';
import type { LlmClient } from '../engine/llm-client.js';
import type { Db } from '../store/db.js';
import { authenticate } from './auth.js';
import { errorHandler, sendError } from './errors.js';
import { adminRoutes } from './routes/admin.js';
import { apiKeyRoutes } from './routes/apikeys.js';
import { auditRoutes } from './routes/audit.js';
import { campaignRoutes } from './routes/campaigns.js';
import { consentRoutes } from './routes/consent.js';
import { contactDetailRoutes } from './routes/contact-detail.js';
import { contactRoutes } from './routes/contacts.js';
import { emailLinkRoutes } from './routes/email-links.js';
import { enrollmentRoutes } from './routes/enrollments.js';
import { eventRoutes } from './routes/events.js';
import { journeyRoutes, journeySchemaRoute } from './routes/journeys.js';
import { knowledgeRoutes } from './routes/knowledge.js';
import { keywordRoutes } from './routes/keywords.js';
import { messageRoutes } from './routes/messages.js';
import { providerRoutes } from './routes/providers.js';
import { reviewRoutes } from './routes/reviews.js';
import { sandboxRoutes } from './routes/sandbox.js';
import { segmentRoutes } from './routes/segments.js';
import { simulateRoutes } from './routes/simulate.js';
import { suppressionRoutes } from './routes/suppressions.js';
import { synthesisRoutes } from './routes/synthesis.js';
import { templateRoutes } from './routes/templates.js';
import { tenantRoutes } from './routes/tenant.js';
import { webhookRoutes } from './routes/webhooks.js';
import { whatsappTemplateRoutes } from './routes/whatsapp-templates.js';

export interface AppDeps {
  db: Db;
  clock: Clock;
  logger?: Logger | false;
  /** Lets a caller act for any tenant (see AuthOptions.adminToken). */
  adminToken?: string;
  /** The public base URL, written into the OpenAPI document. */
  publicUrl?: string;
  /** Seals provider credentials; null or absent when RAPPORT_SECRET_KEY is not set. */
  secrets?: SecretBox | null;
  /** The provider adapters this build has, by kind. */
  adapters?: ReadonlyMap<ProviderKind, ChannelAdapter>;
  /** The chat model synthesis writes with; null or absent: the composer only. */
  llm?: LlmClient | null;
  /** Embeds knowledge chunks and queries; null or absent: search without vectors. */
  embeddings?: EmbeddingsClient | null;
}

/** Everything a route module needs, passed down instead of reached for. */
export type RouteDeps = Pick<AppDeps, 'db' | 'clock' | 'secrets' | 'adapters' | 'publicUrl' | 'llm' | 'embeddings'> & { adminToken?: string };

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** Bulk routes carry up to 10,000 items. */
export const BULK_BODY_LIMIT = 32 * 1024 * 1024;

export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

/** Builds the HTTP API from its parts. It does not listen; the caller decides where. */
export async function buildApp(deps: AppDeps): Promise<App> {
  const app = Fastify({
    loggerInstance: (deps.logger || pino({ enabled: false })) as FastifyBaseLogger,
    bodyLimit: DEFAULT_BODY_LIMIT,
    ajv: {
      customOptions: {
        // Unknown fields are refused by name rather than silently dropped.
        removeAdditional: false,
        coerceTypes: 'array',
        useDefaults: true,
        allErrors: true,
      },
      // ajv-formats' types predate Fastify's plugin signature; the call shape is the documented one.
      plugins: [addFormats as never],
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // The API speaks JSON; a text body is a client mistake better named (415) than half-validated.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Rapport API',
        version: '1',
        description: 'Contacts, consent, events and journeys. Every /v1 call is scoped to the tenant of its API key.',
      },
      servers: deps.publicUrl ? [{ url: deps.publicUrl }] : [],
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'a tenant API key (rpk_…)' } } },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get('/health', { schema: { hide: true } }, async () => {
    await deps.db.query('select 1');
    return { status: 'ok', database: deps.db.kind };
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(webhookRoutes, { db: deps.db, clock: deps.clock, secrets: deps.secrets, adapters: deps.adapters, publicUrl: deps.publicUrl });

  const routeDeps: RouteDeps = {
    db: deps.db,
    clock: deps.clock,
    adminToken: deps.adminToken,
    secrets: deps.secrets,
    adapters: deps.adapters,
    publicUrl: deps.publicUrl,
    llm: deps.llm ?? null,
    embeddings: deps.embeddings ?? null,
  };
  await app.register(emailLinkRoutes, routeDeps);
  await app.register(
    async (v1) => {
      await v1.register(adminRoutes, routeDeps);
      await v1.register(journeySchemaRoute);
      await v1.register(async (scoped) => {
        scoped.decorateRequest('auth', null as never);
        scoped.addHook('onRequest', authenticate({ db: deps.db, adminToken: deps.adminToken }));
        await scoped.register(tenantRoutes, routeDeps);
        await scoped.register(apiKeyRoutes, routeDeps);
        await scoped.register(contactRoutes, routeDeps);
        await scoped.register(contactDetailRoutes, routeDeps);
        await scoped.register(consentRoutes, routeDeps);
        await scoped.register(suppressionRoutes, routeDeps);
        await scoped.register(eventRoutes, routeDeps);
        await scoped.register(auditRoutes, routeDeps);
        await scoped.register(templateRoutes, routeDeps);
        await scoped.register(journeyRoutes, routeDeps);
        await scoped.register(simulateRoutes, routeDeps);
        await scoped.register(enrollmentRoutes, routeDeps);
        await scoped.register(messageRoutes, routeDeps);
        await scoped.register(providerRoutes, routeDeps);
        await scoped.register(keywordRoutes, routeDeps);
        await scoped.register(whatsappTemplateRoutes, routeDeps);
        await scoped.register(sandboxRoutes, routeDeps);
        await scoped.register(knowledgeRoutes, routeDeps);
        await scoped.register(segmentRoutes, routeDeps);
        await scoped.register(campaignRoutes, routeDeps);
        await scoped.register(synthesisRoutes, routeDeps);
        await scoped.register(reviewRoutes, routeDeps);
      });
    },
    { prefix: '/v1' },
  );

  await app.ready();
  return app;
}
