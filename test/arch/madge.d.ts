// The part of madge's API the architecture tests use (madge 8 ships no type declarations).
declare module 'madge' {
  namespace madge {
    interface MadgeConfig {
      readonly baseDir?: string;
      readonly fileExtensions?: readonly string[];
      readonly tsConfig?: string;
      readonly detectiveOptions?: Record<string, Record<string, boolean>>;
    }
    interface MadgeInstance {
      /** Each file and the files it imports, relative to `baseDir`. */
      obj(): Record<string, string[]>;
      /** The import cycles, each as the files on it. */
      circular(): string[][];
      warnings(): { readonly skipped: string[] };
    }
  }
  function madge(path: string | string[], config?: madge.MadgeConfig): Promise<madge.MadgeInstance>;
  export default madge;
}
