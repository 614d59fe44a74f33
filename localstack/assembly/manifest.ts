/**
 * Reading a CDK cloud assembly (`cdk.out`): its `manifest.json`, each stack's template, and
 * the asset manifests that say which folder holds the code a template names only by its S3
 * key or image tag. Nothing here assumes file names inside an asset: a function's code is
 * found from `Code.S3Key` through the asset manifest, its module from the template's `Handler`.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** One resource of a template, as written (intrinsics unresolved). */
export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Condition?: string;
  readonly DependsOn?: string | readonly string[];
}

/** A CloudFormation template, as `cdk synth` writes it. */
export interface CloudFormationTemplate {
  readonly Resources: Readonly<Record<string, TemplateResource>>;
  readonly Outputs?: Readonly<Record<string, { readonly Value: unknown; readonly Description?: string; readonly Condition?: string; readonly Export?: { Name: unknown } }>>;
  readonly Parameters?: Readonly<Record<string, { readonly Type: string; readonly Default?: unknown }>>;
  readonly Conditions?: Readonly<Record<string, unknown>>;
  readonly Mappings?: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>;
}

/** One stack of the assembly. */
export interface AssemblyStack {
  /** The CloudFormation stack name (`properties.stackName`, else the artifact id). */
  readonly stackName: string;
  readonly templatePath: string;
  readonly template: CloudFormationTemplate;
}

/** A file asset: a folder (zipped on upload) or a single file. */
export interface FileAsset {
  /** Absolute path of the staged asset in the assembly. */
  readonly path: string;
  readonly packaging: 'zip' | 'file';
}

/** A Docker image asset: its build context, staged by synth and not built. */
export interface ImageAsset {
  /** Absolute path of the build context. */
  readonly directory: string;
  /** The Dockerfile, relative to the context. @default 'Dockerfile' */
  readonly dockerFile: string;
}

/** What `cdk synth` wrote. */
export interface CloudAssembly {
  readonly directory: string;
  readonly stacks: readonly AssemblyStack[];
  /** File assets by destination object key (what `Code.S3Key` names) and by asset hash. */
  readonly files: ReadonlyMap<string, FileAsset>;
  /** Image assets by destination image tag (what an `Image` URI ends with) and by asset hash. */
  readonly images: ReadonlyMap<string, ImageAsset>;
}

/** The assembly is missing, unreadable or not one `cdk synth` writes. */
export class CloudAssemblyError extends ValenceError {
  override readonly name = 'CloudAssemblyError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.LOCAL_CLOUD_INVALID_CONFIG, message, options);
  }
}

interface ManifestArtifact {
  readonly type: string;
  readonly properties?: { readonly templateFile?: string; readonly stackName?: string; readonly file?: string };
}

interface AssetManifest {
  readonly files?: Record<string, { source: { path: string; packaging?: string }; destinations?: Record<string, { objectKey?: string }> }>;
  readonly dockerImages?: Record<string, { source: { directory?: string; dockerFile?: string }; destinations?: Record<string, { imageTag?: string }> }>;
}

function readJson<T>(path: string, what: string): T {
  if (!existsSync(path)) throw new CloudAssemblyError(`${what} not found at ${path} (run \`npx cdk synth\` first)`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (error) {
    throw new CloudAssemblyError(`${what} at ${path} is not valid JSON`, { cause: error });
  }
}

/** Reads the cloud assembly in `directory` (`cdk.out` by default for `cdk synth`). */
export function readCloudAssembly(directory: string): CloudAssembly {
  const dir = resolve(directory);
  const manifest = readJson<{ artifacts?: Record<string, ManifestArtifact> }>(join(dir, 'manifest.json'), 'the cloud assembly manifest');
  const stacks: AssemblyStack[] = [];
  const files = new Map<string, FileAsset>();
  const images = new Map<string, ImageAsset>();
  for (const [id, artifact] of Object.entries(manifest.artifacts ?? {})) {
    if (artifact.type === 'aws:cloudformation:stack') {
      const templateFile = artifact.properties?.templateFile;
      if (!templateFile) throw new CloudAssemblyError(`stack artifact '${id}' names no templateFile`);
      const templatePath = join(dir, templateFile);
      const template = readJson<CloudFormationTemplate>(templatePath, `the template of stack '${id}'`);
      if (typeof template.Resources !== 'object' || template.Resources === null) throw new CloudAssemblyError(`the template ${templatePath} has no Resources`);
      stacks.push({ stackName: artifact.properties?.stackName ?? id, templatePath, template });
    } else if (artifact.type === 'cdk:asset-manifest' && artifact.properties?.file) {
      const assets = readJson<AssetManifest>(join(dir, artifact.properties.file), `the asset manifest of '${id}'`);
      for (const [hash, asset] of Object.entries(assets.files ?? {})) {
        const file: FileAsset = { path: resolve(dir, asset.source.path), packaging: asset.source.packaging === 'file' ? 'file' : 'zip' };
        files.set(hash, file);
        for (const destination of Object.values(asset.destinations ?? {})) if (destination.objectKey) files.set(destination.objectKey, file);
      }
      for (const [hash, asset] of Object.entries(assets.dockerImages ?? {})) {
        if (!asset.source.directory) continue;
        const image: ImageAsset = { directory: resolve(dir, asset.source.directory), dockerFile: asset.source.dockerFile ?? 'Dockerfile' };
        images.set(hash, image);
        for (const destination of Object.values(asset.destinations ?? {})) if (destination.imageTag) images.set(destination.imageTag, image);
      }
    }
  }
  if (stacks.length === 0) throw new CloudAssemblyError(`the cloud assembly at ${dir} holds no stack`);
  return { directory: dir, stacks, files, images };
}
