// Public entry of adapter/symbols.
export * from './target';
export { Program } from './program';
export type { Frame, Variable, BreakLocation } from './program';
export { CoreFile, executableTarget } from './core';
export { Module } from './module';
export type { SourceLocation } from './module';
export { ElfFile, findDebugFile } from './elf';
export { Value, formatValue, valueChildren, hasChildren } from './values';
export type { Child } from './values';
export { typeName } from './types';
export type { Type } from './types';
export { demangle } from './demangle';
export { Evaluator, ExpressionError } from './expr';
