import { InvalidArgumentError, Option, type Command } from 'commander';
import { ConflictError, InputError, NotFoundError } from '../../core/errors.js';
import { SANDBOX_REPLY_CHANNELS, SANDBOX_REPLY_LIMITS, type SandboxReplyChannel, type SandboxReplyInput, type SandboxReplyOutcome } from '../../engine/sandbox-reply.js';
import { withBackend } from '../backend.js';
import { CliError, parseId, parseTenantId, writeJson, writeLines, type CliContext } from '../context.js';

interface ReplyOptions {
  tenant: string;
  contact?: string;
  from?: string;
  channel: SandboxReplyChannel;
  text?: string;
  payload?: string;
  toMessage?: string;
  id?: string;
  json?: boolean;
}

/** The request's field names as this command's options, so a refusal points at what to change. */
const OPTION_OF: Record<string, string> = { contact_id: '--contact', from: '--from', text: '--text', payload: '--payload', message_id: '--to-message', id: '--id', channel: '--channel' };

const parseContactId = parseId('contact id', 'GET /v1/contacts lists them; or give --from with the number');
const parseMessageId = parseId('message id', 'GET /v1/messages?contact_id=… lists what a contact was sent');

function limited(what: keyof typeof SANDBOX_REPLY_LIMITS) {
  return (value: string): string => {
    if (!value.length || value.length > SANDBOX_REPLY_LIMITS[what]) throw new InvalidArgumentError(`1 to ${SANDBOX_REPLY_LIMITS[what]} characters`);
    return value;
  };
}

/** What happened, in the order it happened, for a person reading it. */
function outcomeLines(input: SandboxReplyInput, r: SandboxReplyOutcome): string[] {
  const who = input.from ?? `contact ${r.contact_id}`;
  if (r.duplicate) {
    return [`Reply id "${input.id}" was recorded before (inbound message ${r.id}, contact ${r.contact_id}); nothing new was recorded.`];
  }
  const lines = [`Recorded a simulated ${input.channel} reply from ${who} (inbound message ${r.id}).`];
  if (r.created_contact) lines.push(`  ${input.from} was no contact's: created contact ${r.contact_id}.`);
  const compliance = r.keyword === 'opt_out' || r.keyword === 'opt_in' || r.keyword === 'help';
  if (r.keyword === 'opt_out') lines.push(`  Keyword: opt-out. Consent on ${input.channel} is revoked; sends queued to the contact on it are cancelled.`);
  if (r.keyword === 'opt_in') lines.push(`  Keyword: opt-in. Consent on ${input.channel} is granted.`);
  if (r.keyword === 'help') lines.push('  Keyword: help.');
  if (r.intent) lines.push(`  Intent: ${r.intent}.`);
  if (r.replied_to) lines.push(compliance ? `  Answers message ${r.replied_to} (a keyword does not mark it replied).` : `  Answers message ${r.replied_to}, now marked replied.`);
  else lines.push(`  Answers no message: none was sent to the contact on ${input.channel} in the last 7 days.`);
  if (r.confirmation_id) lines.push(`  Confirmation ${r.confirmation_id} is queued; a running worker sends it.`);
  lines.push(compliance ? '  Journeys waiting for a reply were not woken: a keyword is not a reply.' : '  Journeys waiting for a reply from the contact wake on it.');
  return lines;
}

export function registerSandbox(program: Command, ctx: CliContext): void {
  const sandbox = program.command('sandbox').description('try journeys out without a phone: act as a contact');

  sandbox
    .command('reply')
    .description('simulate a reply or button press from a contact; Rapport handles it as a real one (keywords, intents, waiting journeys)')
    .requiredOption('--tenant <id>', 'tenant id', parseTenantId)
    .option('--contact <id>', 'the contact replying (from its number or email for the channel)', parseContactId)
    .option('--from <address>', 'or the address replying: +14155550123, or an email for --channel email; an unknown one becomes a contact', limited('from'))
    .addOption(new Option('--channel <channel>', 'the channel the reply comes on').choices(SANDBOX_REPLY_CHANNELS).default('sms'))
    .option('--text <text>', "what the contact typed; with --payload, the button's text", limited('text'))
    .option('--payload <payload>', 'the payload of the button pressed, e.g. moving_now; IVR digits for voice', limited('payload'))
    .option('--to-message <id>', 'the message answered (default: the latest sent to the contact on the channel in the last 7 days)', parseMessageId)
    .option('--id <id>', 'your id for this reply: running the command again with it records nothing new', limited('id'))
    .option('--json', 'print {"id", "contact_id", "duplicate", "keyword", "intent", "replied_to", "confirmation_id"}')
    .action(async (opts: ReplyOptions) => {
      if (opts.contact && opts.from) throw new CliError('give --contact or --from, not both');
      if (!opts.contact && !opts.from) throw new CliError('say who replies: --contact <id> or --from <address>');
      if (!opts.text && !opts.payload) throw new CliError('say what the reply is: --text "…", --payload <payload>, or both');
      const input: SandboxReplyInput = {
        channel: opts.channel,
        ...(opts.contact ? { contact_id: opts.contact } : { from: opts.from! }),
        ...(opts.text !== undefined ? { text: opts.text } : {}),
        ...(opts.payload !== undefined ? { payload: opts.payload } : {}),
        ...(opts.toMessage ? { message_id: opts.toMessage } : {}),
        ...(opts.id !== undefined ? { id: opts.id } : {}),
      };
      const outcome = await withBackend(ctx.env, async (b) => {
        try {
          return await b.sandboxReply(opts.tenant, input);
        } catch (err) {
          throw explain(err, opts, b.where);
        }
      });
      if (opts.json) return writeJson(ctx, outcome);
      writeLines(ctx, ...outcomeLines(input, outcome));
    });
}

function explain(err: unknown, opts: ReplyOptions, where: string): unknown {
  if (err instanceof NotFoundError) {
    if (err.resource === 'tenant') return new CliError(`tenant ${opts.tenant} does not exist in ${where}; \`rapport tenant list\` shows the tenants`);
    if (err.resource === 'contact') return new CliError(`tenant ${opts.tenant} has no contact ${opts.contact}`);
    if (err.resource === 'message') return new CliError(`tenant ${opts.tenant} has no message ${opts.toMessage}`);
  }
  if (err instanceof InputError || err instanceof ConflictError) {
    const problems = err instanceof InputError ? err.problems : [{ field: err.field ?? '', message: err.message.replace(new RegExp(`^${err.field} `), '') }];
    return new CliError(problems.map((p) => `${OPTION_OF[p.field] ?? p.field}: ${p.message}`).join('; '));
  }
  return err;
}
