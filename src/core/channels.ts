/** Channels a contact can consent to and be reached on. */
export const CONSENT_CHANNELS = ['sms', 'email', 'whatsapp', 'voice'] as const;
export type ConsentChannel = (typeof CONSENT_CHANNELS)[number];

export const CONSENT_TYPES = ['express_written', 'express', 'implied', 'transactional'] as const;
export type ConsentType = (typeof CONSENT_TYPES)[number];
