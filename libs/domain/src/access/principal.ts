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
 * `user_id`): 1-200 printable ASCII characters. One rule, so any owner can be named in a header
 * to read its objects back, and no id can carry a byte the database refuses.
 */
export function isUserId(value: string): boolean {
  return USER_ID.test(value);
}

const USER_ID = /^[\x21-\x7e]{1,200}$/;

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

/** Changing an object (pin, delete, complete) follows the same rule as reading it. */
export const canModify = canRead;
