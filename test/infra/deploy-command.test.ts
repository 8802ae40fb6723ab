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

describe('README deploy command', () => {
  const commands = [...README.matchAll(DEPLOY)].map((m) => ({ pattern: m[1] ?? '', stage: m[2] ?? '' }));

  it('names at least one deploy command', () => {
    expect(commands.length).toBeGreaterThan(0);
  });

  it('selects every stack of the stage it names, as bin/app.ts builds the app', () => {
    for (const { pattern, stage } of commands) {
      // Prepare: the app as bin/app.ts builds it (bundling skipped: only the assembly's shape matters).
      const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
      new PipelineStage(app, stageId(stage), { config: stageConfig(stage) });

      // Act
      const stacks = app
        .synth()
        .stacksRecursively.map((s) => s.hierarchicalId)
        .sort();

      // Assess
      expect(stacks).toEqual([`${stageId(stage)}/Compute`, `${stageId(stage)}/Data`]);
      expect({ pattern, selected: stacks.filter((id) => selects(pattern, id)) }).toEqual({
        pattern,
        selected: stacks,
      });
    }
  });

  it('would have caught --all, which selects no stack of a Stage', () => {
    expect(selects('--all', `${stageId('dev')}/Data`)).toBe(false);
    expect(selects(`'${stageId('dev')}/*'`, `${stageId('dev')}/Data`)).toBe(true);
  });
});
