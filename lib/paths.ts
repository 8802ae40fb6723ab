import { fileURLToPath } from 'node:url';

/** Paths of the working tree, for code that runs from the repository (CLI, CDK app, tests). */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const MIGRATIONS_DIR = fileURLToPath(new URL('../schemas/sql', import.meta.url));
