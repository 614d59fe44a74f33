// asl-validator ships no types. It mutates the definition it checks: pass a structuredClone.
declare module 'asl-validator' {
  interface AslValidatorError {
    readonly 'Error code'?: string;
    readonly Message?: string;
    readonly message?: string;
    readonly path?: string;
  }
  interface AslValidatorResult {
    readonly isValid: boolean;
    readonly errors: readonly AslValidatorError[];
  }
  function aslValidator(definition: unknown, options?: { checkArn?: boolean; checkPaths?: boolean }): AslValidatorResult;
  export = aslValidator;
}
