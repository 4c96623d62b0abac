/**
 * Client authentication and user management messages (see `../auth/access.ts` for the model).
 *
 * - `login` `{user, password}` or `{token}`: authenticates the connection; `login.ok` carries the user,
 *   its roles and a session token (`paxkv login` keeps it) valid until `expiresAtMs`.
 * - `user` `{action, user?, password?, role?}`: `add`, `remove`, `list`, `grant`, `revoke`, `passwd`;
 *   `role` `{action, role?, permissions?}`: `add`, `remove`, `list`. Both answered with `user.ok`
 *   (with the list for `list`). Only an `admin` may send them when authentication is on.
 * @module
 */
import { z } from 'zod';
import { PasswordSchema, PermissionSchema, PrincipalNameSchema, RoleSchema } from '../auth/access.js';
import { RequestIdSchema } from './primitives.js';

/** Authenticates the connection with a password or a session token. */
export const LoginRequestSchema = z
  .object({
    type: z.literal('login'),
    id: RequestIdSchema,
    user: PrincipalNameSchema.optional(),
    password: z.string().max(1024).optional(),
    token: z.string().max(1024).optional(),
  })
  .refine((a) => (a.token === undefined) === (a.user !== undefined && a.password !== undefined), {
    message: 'give either user and password, or token',
    path: ['token'],
  });

/** The connection is authenticated as `user`. */
export const LoginOkSchema = z.object({
  type: z.literal('login.ok'),
  id: RequestIdSchema,
  user: PrincipalNameSchema,
  roles: z.array(PrincipalNameSchema).max(64),
  token: z.string().max(1024),
  expiresAtMs: z.number(),
});

/** Manages users. */
export const UserRequestSchema = z
  .object({
    type: z.literal('user'),
    id: RequestIdSchema,
    action: z.enum(['add', 'remove', 'list', 'grant', 'revoke', 'passwd']),
    user: PrincipalNameSchema.optional(),
    password: PasswordSchema.optional(),
    role: PrincipalNameSchema.optional(),
  })
  .superRefine((r, ctx) => {
    const need = (field: 'user' | 'password' | 'role') => {
      if (r[field] === undefined)
        ctx.addIssue({ code: 'custom', path: [field], message: `user ${r.action} needs ${field}` });
    };
    if (r.action !== 'list') need('user');
    if (r.action === 'add' || r.action === 'passwd') need('password');
    if (r.action === 'grant' || r.action === 'revoke') need('role');
  });

/** Manages roles. */
export const RoleRequestSchema = z
  .object({
    type: z.literal('role'),
    id: RequestIdSchema,
    action: z.enum(['add', 'remove', 'list']),
    role: PrincipalNameSchema.optional(),
    permissions: z.array(PermissionSchema).max(256).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.action !== 'list' && r.role === undefined)
      ctx.addIssue({ code: 'custom', path: ['role'], message: `role ${r.action} needs role` });
    if (r.action === 'add' && r.permissions === undefined)
      ctx.addIssue({ code: 'custom', path: ['permissions'], message: 'role add needs permissions' });
  });

/** Answer to `user` and `role`: done, with the lists for `list`. */
export const UserOkSchema = z.object({
  type: z.literal('user.ok'),
  id: RequestIdSchema,
  users: z
    .array(z.object({ name: PrincipalNameSchema, roles: z.array(PrincipalNameSchema).max(64) }))
    .max(100_000)
    .optional(),
  roles: z.array(RoleSchema).max(100_000).optional(),
});

/** A `login` request. */
export type LoginRequest = z.infer<typeof LoginRequestSchema>;
/** A `login.ok` reply. */
export type LoginOk = z.infer<typeof LoginOkSchema>;
/** A `user` request. */
export type UserRequest = z.infer<typeof UserRequestSchema>;
/** A `role` request. */
export type RoleRequest = z.infer<typeof RoleRequestSchema>;
/** A `user.ok` reply. */
export type UserOk = z.infer<typeof UserOkSchema>;
