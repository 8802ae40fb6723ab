import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { stageConfig } from '../../lib/config';
import { REPO_ROOT } from '../../lib/paths';
import { PipelineStage, stageId } from '../../lib/pipeline-stage';

// The README's deploy commands, checked against the app's real shape: the stacks sit inside a Stage,
// and the CDK CLI's `--all` selects only top-level stacks, so `cdk deploy --all` deployed nothing
// ("No stack found in the main cloud assembly", issue 18). A command must select every stack of its
// stage, with the CLI's pattern rules (`*` does not cross a `/`).

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const DEPLOY = /npx cdk deploy (\S+)[^\n]*?-c stage=(\w+)/g;

function selects(pattern: string, hierarchicalId: string): boolean {
  const glob = pattern.replace(/^'(.*)'$/, '$1');
  const regex = new RegExp(
    `^${glob
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]*')}$`,
  );
  return regex.test(hierarchicalId);
}

const COMMANDS = [...README.matchAll(DEPLOY)].map((m) => ({ pattern: m[1] ?? '', stage: m[2] ?? '' }));

/** Each named stage's stacks, from the app as bin/app.ts builds it (bundling skipped: only the
 * assembly's shape matters). Synthesized at load time: a synth outlasts a test's timeout when loaded. */
const STACKS = new Map(
  [...new Set(COMMANDS.map((c) => c.stage))].map((stage) => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    new PipelineStage(app, stageId(stage), { config: stageConfig(stage) });
    const stacks = app
      .synth()
      .stacksRecursively.map((s) => s.hierarchicalId)
      .sort();
    return [stage, stacks] as const;
  }),
);

describe('README deploy command', () => {
  it('names a deploy command for every deployable stage', () => {
    expect([...STACKS.keys()].sort()).toEqual(['dev', 'prod', 'staging']);
  });

  it('selects every stack of the stage it names', () => {
    for (const { pattern, stage } of COMMANDS) {
      // Prepare
      const stacks = STACKS.get(stage) ?? [];
      expect(stacks).toEqual([`${stageId(stage)}/Compute`, `${stageId(stage)}/Data`]);

      // Act
      const selected = stacks.filter((id) => selects(pattern, id));

      // Assess
      expect({ pattern, selected }).toEqual({ pattern, selected: stacks });
    }
  });

  it('would have caught --all, which selects no stack of a Stage', () => {
    expect(selects('--all', `${stageId('dev')}/Data`)).toBe(false);
    expect(selects(`'${stageId('dev')}/*'`, `${stageId('dev')}/Data`)).toBe(true);
  });
});
