/** One problem with one field of a request, named by its path (e.g. `contacts[3].phone`). */
export interface FieldProblem {
  field: string;
  message: string;
}

/** Input that Rapport refuses; nothing has been written when it is thrown. */
export class InputError extends Error {
  constructor(readonly problems: FieldProblem[]) {
    super(problems.map((p) => `${p.field}: ${p.message}`).join('; '));
    this.name = 'InputError';
  }
  static field(field: string, message: string): InputError {
    return new InputError([{ field, message }]);
  }
}

export class NotFoundError extends Error {
  constructor(readonly resource: string) {
    super(`${resource} not found`);
    this.name = 'NotFoundError';
  }
}

/** The request is well-formed but clashes with what is stored (e.g. an identity owned by another contact). */
export class ConflictError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ConflictError';
  }
}
