import type { MediaObject } from '../media/media-object';

/**
 * Who is calling, as established by the HTTP layer.
 * - `user`: an end user; `subject` owns what they upload.
 * - `service`: a trusted backend (llm-api); acts for `actingFor` when it names a user.
 * - `admin`: an operator; may read and manage everything.
 */
export type Principal =
  | { kind: 'user'; subject: string }
  | { kind: 'service'; serviceId: string; actingFor: string | null }
  | { kind: 'admin'; adminId: string; actingFor: string | null };

/**
 * What a user id may be, wherever it comes from (a token's subject, `X-Jan-User-Id`, a body's
 * `user_id`): 1-200 printable ASCII characters, not starting with a reserved owner prefix. One
 * rule, so any owner can be named in a header to read its objects back, no id can carry a byte the
 * database refuses, and no user id can be the owner of a service's or admin's own uploads.
 */
export function isUserId(value: string): boolean {
  return USER_ID.test(value) && !isReservedOwner(value);
}

/** The rule of {@link isUserId}, in words for error messages and as a pattern for the OpenAPI document. */
export const USER_ID_RULE = '1-200 printable ASCII characters, not starting with "service:" or "admin:" (reserved)';
export const USER_ID_PATTERN = '^(?!service:|admin:)[\\x21-\\x7e]{1,200}$';

/**
 * Uploads of a service or admin acting for nobody belong to `service:<id>` or `admin:<id>`
 * ({@link resolveOwner}). A user id must never be such a name: a token whose `sub` is
 * `service:service-key-…`, or a service naming it in `X-Jan-User-Id`, would otherwise act as that
 * owner and read its objects.
 */
const RESERVED_OWNER_PREFIXES = ['service:', 'admin:'] as const;

export function isReservedOwner(value: string): boolean {
  return RESERVED_OWNER_PREFIXES.some((prefix) => value.startsWith(prefix));
}

const USER_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Whether `value` can name an owner at all (a user id, `service:<name>`, `admin:<name>`): an
 * operator's owner filter that cannot is refused rather than sent to the database, which refuses
 * a NUL byte outright. No owner holds a control character, whatever its kind.
 */
export function isOwnerName(value: string): boolean {
  return value.length > 0 && !CONTROL_CHARACTER.test(value);
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\x00-\x1f\x7f]/;

/** The owner new uploads belong to, or null when the caller names nobody. */
export function ownerFor(principal: Principal): string | null {
  switch (principal.kind) {
    case 'user':
      return principal.subject;
    case 'service':
    case 'admin':
      return principal.actingFor;
  }
}

/** A short, log-safe description of the actor: `user:<sub>`, `service:<id>`, `admin:<id>`. */
export function actorOf(principal: Principal): { kind: Principal['kind']; id: string } {
  switch (principal.kind) {
    case 'user':
      return { kind: 'user', id: principal.subject };
    case 'service':
      return { kind: 'service', id: principal.serviceId };
    case 'admin':
      return { kind: 'admin', id: principal.adminId };
  }
}

/**
 * The access rule, in one place: the owner, a service acting for the owner, or an admin.
 * A service that names no user is a trusted backend resolving on behalf of whichever user is
 * chatting (Jan's llm-api today); it may read any object.
 */
export function canRead(principal: Principal, media: Pick<MediaObject, 'ownerId'>): boolean {
  switch (principal.kind) {
    case 'admin':
      return true;
    case 'user':
      return principal.subject === media.ownerId;
    case 'service':
      return principal.actingFor === null || principal.actingFor === media.ownerId;
  }
}

