import { Type } from 'typebox';
import { RECIPIENT_STATES } from '../../store/campaigns.js';
import { PageQuery, Timestamp, Uuid } from './common.js';

const Rate = Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()]);
const Count = Type.Integer({ minimum: 0 });

const Arm = Type.Object({
  name: Type.String(),
  tone: Type.String(),
  recipients: Type.Integer({ description: 'pulses written for the arm' }),
  delivered: Type.Integer({ description: 'of them, delivered or better' }),
  responded: Type.Integer({ description: 'of them, replied to within 48 hours of being sent' }),
  response_rate: Type.Union([Type.Number(), Type.Null()], { description: 'responded / delivered; null before any was delivered' }),
});

export const ToneTestReport = Type.Object(
  {
    variants: Type.Array(Arm),
    leader: Type.Union([Type.String(), Type.Null()], { description: 'the arm with the best response rate; null without enough data or on a tie' }),
    z: Type.Union([Type.Number(), Type.Null()], { description: "two-proportion z of the leader's rate against the runner-up's" }),
    significant: Type.Boolean({ description: 'the lead holds at 95% (z ≥ 1.96)' }),
    verdict: Type.String({ description: 'in words, with the counts; "not enough data" while an arm has fewer than 30 delivered pulses' }),
  },
  { description: 'a pulse tone test: each arm and which leads' },
);

export const CampaignRun = Type.Object({
  id: Uuid,
  key: Type.String({ description: 'the occurrence key: its scheduled instant, or local:<wall time> for a recipient-local one' }),
  scheduled_for: Timestamp,
  status: Type.String({ description: 'running, paused, completed or cancelled' }),
  started_at: Timestamp,
  completed_at: Type.Union([Timestamp, Type.Null()]),
  recipients: Count,
  totals: Type.Object(
    { recipients: Count, ...Object.fromEntries(RECIPIENT_STATES.map((s) => [s, Count])) },
    { description: "the run's recipients in each state now (see GET /campaigns/{id}/recipients)" },
  ),
  messages: Type.Object(
    { sent: Count, delivered: Count, read: Count, responded: Count },
    { description: 'messages sent, delivered or better, read or better, replied to within 48 hours of being sent' },
  ),
  rates: Type.Object(
    {
      delivery: Rate,
      read: Rate,
      response: Rate,
    },
    { description: 'delivery = delivered / sent, read = read / delivered, response = responded / delivered; null when the denominator is 0' },
  ),
  pulse: Type.Union(
    [
      Type.Object({
        synthesized: Count,
        mean_personalization_score: Type.Union([Type.Number(), Type.Null()]),
        tone_test: Type.Union([ToneTestReport, Type.Null()]),
      }),
      Type.Null(),
    ],
    { description: 'for a pulse: its messages, their mean personalization score and the tone test in this run' },
  ),
});

export const CampaignRunsPage = Type.Object({
  data: Type.Array(CampaignRun),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as ?cursor= to get the next page; null on the last page' }),
  tone_test: Type.Union([ToneTestReport, Type.Null()], { description: "a pulse's tone test over all its runs; null without one" }),
});

export const CampaignRunsQuery = Type.Object({ ...PageQuery }, { additionalProperties: false });
