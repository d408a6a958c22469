import { Type, type TSchema } from 'typebox';

export const Uuid = Type.String({ format: 'uuid' });
export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      fields: Type.Optional(
        Type.Array(Type.Object({ field: Type.String({ description: 'path of the offending field, e.g. contacts[3].phone' }), in: Type.Optional(Type.String()), message: Type.String() })),
      ),
    }),
  },
  { $id: 'Error', description: 'every error response has this shape' },
);

/** Standard error responses for OpenAPI, so clients see the error shape on every route. */
export function errors(...codes: number[]): Record<number, TSchema> {
  return Object.fromEntries(codes.map((c) => [c, ErrorBody]));
}

/** A Date in handlers, an ISO 8601 string on the wire. */
export const Timestamp = Type.Unsafe<Date | string>({ type: 'string', format: 'date-time' });

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    data: Type.Array(item),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as ?cursor= to get the next page; null on the last page' }),
  });

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
};
