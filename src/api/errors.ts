import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ConflictError, InputError, NotFoundError, type FieldProblem } from '../core/errors.js';

/**
 * Every error leaves the API in one shape:
 *   { "error": { "code": "invalid_request", "message": "...", "fields": [{ "field": "contacts[3].phone", "in": "body", "message": "..." }] } }
 */
export interface ApiErrorBody {
  error: { code: string; message: string; fields?: (FieldProblem & { in?: string })[] };
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `/contacts/3/phone` -> `contacts[3].phone` */
export function jsonPointerToField(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function describeAjv(e: AjvError, where: string): FieldProblem & { in: string } {
  let field = jsonPointerToField(e.instancePath);
  const join = (name: string) => (field ? `${field}.${name}` : name);
  let message = e.message ?? 'is invalid';
  if (e.keyword === 'required') {
    field = join(String(e.params.missingProperty));
    message = 'is required';
  } else if (e.keyword === 'additionalProperties') {
    field = join(String(e.params.additionalProperty));
    message = 'is not a known field';
  } else if (e.keyword === 'enum') {
    message = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (e.keyword === 'anyOf' || e.keyword === 'oneOf') {
    message = 'does not match any allowed shape';
  }
  return { field: field || where, in: where, message };
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, fields?: ApiErrorBody['error']['fields']): FastifyReply {
  const body: ApiErrorBody = { error: { code, message, ...(fields ? { fields } : {}) } };
  return reply.status(status).send(body);
}

export function errorHandler(error: Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const err = error as FastifyError & { validationContext?: string };
  if (err.validation) {
    const where = err.validationContext ?? 'body';
    // anyOf/oneOf add a summary after the specific errors; keep the specific ones when present.
    const all = (err.validation as AjvError[]).map((e) => describeAjv(e, where));
    const specific = all.filter((f, i) => !['anyOf', 'oneOf'].includes((err.validation as AjvError[])[i]!.keyword));
    const fields = dedupe(specific.length ? specific : all).slice(0, 100);
    return sendError(reply, 400, 'invalid_request', fields.map((f) => `${f.field} ${f.message}`).slice(0, 5).join('; '), fields);
  }
  if (error instanceof InputError) {
    return sendError(reply, 400, 'invalid_request', error.message.slice(0, 500), error.problems.slice(0, 1000).map((p) => ({ ...p, in: 'body' })));
  }
  if (error instanceof NotFoundError) return sendError(reply, 404, 'not_found', error.message);
  if (error instanceof ConflictError) {
    return sendError(reply, 409, 'conflict', error.message, error.field ? [{ field: error.field, message: error.message }] : undefined);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendError(reply, 413, 'payload_too_large', `request body is larger than this route accepts (${req.routeOptions.bodyLimit ?? 'the limit'} bytes)`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return sendError(reply, 415, 'unsupported_media_type', 'send the request body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return sendError(reply, 400, 'invalid_request', 'the request body is empty but the content type says JSON', [{ field: 'body', in: 'body', message: 'is empty' }]);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return sendError(reply, 400, 'invalid_request', 'the request body is not valid JSON', [{ field: 'body', in: 'body', message: err.message }]);
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return sendError(reply, err.statusCode, 'invalid_request', err.message);
  }
  req.log.error({ err }, 'request failed');
  return sendError(reply, 500, 'internal_error', 'Rapport could not complete the request; the error is in the server log');
}

function dedupe<T extends FieldProblem>(list: T[]): T[] {
  const seen = new Set<string>();
  return list.filter((f) => {
    const k = `${f.field}|${f.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
