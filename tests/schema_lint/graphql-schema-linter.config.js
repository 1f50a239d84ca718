// The rules graphql-schema-linter applies to the published schema.graphql
// (tests/test_schema_lint.py runs it; any finding fails the test).
module.exports = {
  rules: [
    // A frontend developer reads the API in GraphiQL: everything carries a description.
    "types-have-descriptions",
    "fields-have-descriptions",
    "arguments-have-descriptions",
    "input-object-values-have-descriptions",
    "enum-values-have-descriptions",
    "descriptions-are-capitalized",
    "deprecations-have-a-reason",
    // Naming: TypeNames, fieldNames, inputFieldNames and ENUM_VALUES.
    "types-are-capitalized",
    "fields-are-camel-cased",
    "input-object-values-are-camel-cased",
    "enum-values-all-caps",
    // Relay's cursor connections: XConnection types with edges and pageInfo, and PageInfo's
    // four fields.
    "relay-connection-types-spec",
    "relay-page-info-spec",
    // Every type declared is reachable from Query, Mutation or Subscription.
    "defined-types-are-used",
  ],
  // Off, on purpose:
  // - relay-connection-arguments-spec: it wants `first: Int` nullable once a connection
  //   also takes `last`/`before`. Tenure's `first` is `Int!` with a default (20, or the
  //   nested default), so no page is ever unbounded and a client that pages backwards
  //   simply leaves it out (`last` takes its place). Every connection takes first, after,
  //   last and before; tests/core/test_relay.py pages both ways.
  // - type-fields-sorted-alphabetically, interface-fields-sorted-alphabetically and
  //   input-object-fields-sorted-alphabetically: fields are listed in the order that reads
  //   best (id first, then what belongs together), which GraphiQL and the generated
  //   TypeScript keep; an alphabetical order would scatter amount from currency.
  // - enum-values-sorted-alphabetically: values follow their lifecycle or their scale
  //   (PLACED, PAID, CANCELLED, REFUNDED; HIGH, MEDIUM, LOW), which an alphabet would break.
};
