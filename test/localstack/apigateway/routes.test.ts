import { describe, expect, it } from 'vitest';
import { compileRoute, InvalidResourcePathError, matchRoute } from '../../../localstack/apigateway/routes.ts';

const route = (method: string, path: string) => ({ ...compileRoute(path), method });

describe('API Gateway resource matching', () => {
  const routes = [
    route('POST', '/dispatches/{id}/cancel'),
    route('GET', '/dispatches/{id}'),
    route('GET', '/dispatches/latest'),
    route('ANY', '/files/{key+}'),
    route('GET', '/files/{key+}'),
  ];

  it('prefers a literal segment over a parameter', () => {
    expect(matchRoute(routes, 'GET', '/dispatches/latest')?.route.resource).toBe('/dispatches/latest');
    expect(matchRoute(routes, 'GET', '/dispatches/d-1')).toMatchObject({ route: { resource: '/dispatches/{id}' }, pathParameters: { id: 'd-1' } });
  });

  it('matches a greedy parameter over the rest of the path, preferring the exact method over ANY', () => {
    expect(matchRoute(routes, 'GET', '/files/a/b/c')).toMatchObject({ route: { method: 'GET' }, pathParameters: { key: 'a/b/c' } });
    expect(matchRoute(routes, 'DELETE', '/files/a')).toMatchObject({ route: { method: 'ANY' }, pathParameters: { key: 'a' } });
    expect(matchRoute(routes, 'GET', '/files')).toBeUndefined();
  });

  it('matches neither other methods nor other lengths', () => {
    expect(matchRoute(routes, 'GET', '/dispatches/d-1/cancel')).toBeUndefined();
    expect(matchRoute(routes, 'POST', '/dispatches/d-1/cancel/now')).toBeUndefined();
  });

  it('rejects templates API Gateway would reject', () => {
    expect(() => compileRoute('dispatches')).toThrow(InvalidResourcePathError);
    expect(() => compileRoute('/{a+}/b')).toThrow(InvalidResourcePathError);
    expect(() => compileRoute('/x{y}')).toThrow(InvalidResourcePathError);
  });
});
