import { Type } from 'typebox';
import {
  CampaignActionSpec,
  CampaignAudience,
  CampaignSchedule,
  CampaignStatus,
  CampaignThrottle,
  CampaignType,
} from '../../core/campaign.js';
import { RECIPIENT_STATES } from '../../store/campaigns.js';
import { literals } from '../../core/journey/definition.js';
import { PageQuery, Timestamp, Uuid } from './common.js';

const Name = Type.String({ minLength: 1, maxLength: 200, pattern: '^\\S(.*\\S)?$', description: 'unique in your tenant' });
const Description = Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 2000 })]));

export const CampaignInput = Type.Object(
  {
    name: Name,
    description: Description,
    type: CampaignType,
    audience: Type.Optional(CampaignAudience),
    action: CampaignActionSpec,
    schedule: Type.Optional(CampaignSchedule),
    throttle: Type.Optional(CampaignThrottle),
  },
  { additionalProperties: false },
);

export const CampaignPatch = Type.Object(
  {
    name: Type.Optional(Name),
    description: Description,
    type: Type.Optional(CampaignType),
    audience: Type.Optional(CampaignAudience),
    action: Type.Optional(CampaignActionSpec),
    schedule: Type.Optional(CampaignSchedule),
    throttle: Type.Optional(CampaignThrottle),
  },
  { additionalProperties: false, description: 'the given fields replace the stored ones; only in draft or scheduled' },
);

export const RecipientState = literals(RECIPIENT_STATES);

const Totals = Type.Object(
  { recipients: Type.Integer(), ...Object.fromEntries(RECIPIENT_STATES.map((s) => [s, Type.Integer()])) },
  { description: 'recipients in each state now, and in all' },
);

const CampaignFields = {
  id: Uuid,
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  type: CampaignType,
  status: CampaignStatus,
  audience: Type.Record(Type.String(), Type.Unknown()),
  action: Type.Record(Type.String(), Type.Unknown()),
  schedule: Type.Record(Type.String(), Type.Unknown()),
  throttle: Type.Record(Type.String(), Type.Unknown()),
  next_run_at: Type.Union([Timestamp, Type.Null()], { description: 'when the next occurrence starts' }),
  next_local: Type.Union([Type.String(), Type.Null()], {
    description: "for a recipient-local schedule, the wall-clock time of the next occurrence (it starts, at next_run_at, where that time comes first)",
  }),
  created_at: Timestamp,
  updated_at: Timestamp,
  started_at: Type.Union([Timestamp, Type.Null()]),
  paused_at: Type.Union([Timestamp, Type.Null()]),
  completed_at: Type.Union([Timestamp, Type.Null()]),
  cancelled_at: Type.Union([Timestamp, Type.Null()]),
};

export const Campaign = Type.Object(CampaignFields);
export const CampaignWithTotals = Type.Object({ ...CampaignFields, totals: Totals });

export const CampaignListQuery = Type.Object({ ...PageQuery, status: Type.Optional(CampaignStatus) }, { additionalProperties: false });

export const RecipientsQuery = Type.Object(
  {
    ...PageQuery,
    state: Type.Optional(RecipientState),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')], { description: 'csv: every recipient (limit and cursor ignored), streamed with a header row' })),
  },
  { additionalProperties: false },
);

export const Recipient = Type.Object({
  contact_id: Uuid,
  external_id: Type.Union([Type.String(), Type.Null()]),
  name: Type.Union([Type.String(), Type.Null()]),
  occurrence_key: Type.String({ description: 'the occurrence that reached the contact: its scheduled instant' }),
  state: RecipientState,
  detail: Type.Union([Type.String(), Type.Null()], { description: "the message's or enrollment's own status" }),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'why a recipient was skipped' }),
  message_id: Type.Union([Uuid, Type.Null()]),
  enrollment_id: Type.Union([Uuid, Type.Null()]),
  sent_at: Type.Union([Timestamp, Type.Null()]),
  delivered_at: Type.Union([Timestamp, Type.Null()]),
  replied_at: Type.Union([Timestamp, Type.Null()]),
  created_at: Timestamp,
});
