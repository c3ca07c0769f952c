/** Opens the artifact store a `--store` value names: a folder, or S3 (loaded only when used). */
import { KmatrixError } from '../core/errors.ts';
import { DirArtifactStore, type ArtifactStore } from './artifact-store.ts';

/** Where publish writes and verify and request read, unless told otherwise. */
export const defaultPublishStore = (env: NodeJS.ProcessEnv = process.env) =>
  env.KMATRIX_PUBLISH_STORE ?? 'dist/published';

/** `DIR` or `s3://bucket/prefix`. */
export async function openArtifactStore(
  location: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ArtifactStore> {
  if (location.startsWith('s3://')) {
    try {
      // The AWS SDK is loaded only for an S3 store (it costs every command's start otherwise).
      const { S3ArtifactStore } = await import('./s3-artifact-store.ts');
      return new S3ArtifactStore(location, env);
    } catch (error) {
      throw new KmatrixError((error as Error).message, {
        stage: 'publish',
        remedy: 'pass --store DIR or --store s3://bucket/prefix',
      });
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new KmatrixError(`unsupported artifact store "${location}"`, {
      stage: 'publish',
      remedy: 'pass --store DIR or --store s3://bucket/prefix',
    });
  }
  return new DirArtifactStore(location);
}
