/**
 * The components with a database role of their own (schemas/sql/0090_roles.sql). No imports: the
 * CDK app reads this list too (one login secret per component).
 */
export const DATABASE_COMPONENTS = ['app', 'market', 'health', 'trading', 'router'] as const;
export type DatabaseComponent = (typeof DATABASE_COMPONENTS)[number];

/** The login role of a component: a member of its group role `tickstock_<component>` only. */
export function componentLoginRole(component: DatabaseComponent): string {
  return `tickstock_${component}_login`;
}
