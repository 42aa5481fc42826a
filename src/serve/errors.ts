// forklm's typed errors as OpenAI's error responses: { error: { message, type, param, code } } with the HTTP status
// OpenAI's API uses for the same fault, so any OpenAI client raises its usual exception class (BadRequestError,
// NotFoundError, ...).
import { CancelledError, ContextOverflowError, ForkLMError, InvalidArgumentError, ModelNotFoundError, NoChatTemplateError, PagePoolExhaustedError } from '../errors.js';

export interface OpenAiError {
  status: number;
  body: { error: { message: string; type: string; param: string | null; code: string | null } };
}

/** A request-level fault the server finds itself (bad JSON, unknown route, body too large, busy). */
export class HttpError extends ForkLMError {
  constructor(
    readonly status: number,
    readonly type: string,
    code: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(code, message);
  }
}

export function toOpenAiError(err: unknown): OpenAiError {
  const make = (status: number, type: string, message: string, param: string | null, code: string | null): OpenAiError => ({
    status,
    body: { error: { message, type, param, code } },
  });
  if (err instanceof HttpError) return make(err.status, err.type, err.message, err.param, err.code.toLowerCase());
  if (err instanceof ContextOverflowError) return make(400, 'invalid_request_error', err.message, 'messages', 'context_length_exceeded');
  if (err instanceof InvalidArgumentError) return make(400, 'invalid_request_error', err.message, err.param, 'invalid_value');
  if (err instanceof NoChatTemplateError) return make(400, 'invalid_request_error', err.message, 'messages', 'no_chat_template');
  if (err instanceof ModelNotFoundError) return make(404, 'invalid_request_error', err.message, 'model', 'model_not_found');
  if (err instanceof PagePoolExhaustedError) return make(503, 'server_error', err.message, null, 'kv_cache_full');
  if (err instanceof CancelledError) return make(499, 'invalid_request_error', err.message, null, 'cancelled');
  if (err instanceof ForkLMError) return make(500, 'server_error', err.message, null, err.code.toLowerCase());
  return make(500, 'server_error', `Internal error: ${err instanceof Error ? err.message : String(err)}`, null, null);
}
