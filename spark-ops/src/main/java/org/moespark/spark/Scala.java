package org.moespark.spark;

import java.util.List;
import java.util.function.Function;
import java.util.function.Predicate;
import scala.PartialFunction;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractPartialFunction;

/** Java ↔ Scala glue used by the Catalyst nodes (the one place that touches scala collections). */
final class Scala {
  private Scala() {}

  static <T> scala.collection.immutable.Seq<T> seq(List<T> list) {
    return CollectionConverters.asScala(list).toList();
  }

  @SafeVarargs
  static <T> scala.collection.immutable.Seq<T> seq(T... items) {
    return seq(List.of(items));
  }

  static <T> List<T> list(scala.collection.Seq<T> seq) {
    return CollectionConverters.asJava(seq);
  }

  /** A partial function defined where {@code when} holds. */
  static <A, B> PartialFunction<A, B> pf(Predicate<A> when, Function<A, B> f) {
    return new PartialFn<>(when, f);
  }

  private static final class PartialFn<A, B> extends AbstractPartialFunction<A, B> implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    private final transient Predicate<A> when;
    private final transient Function<A, B> f;

    PartialFn(Predicate<A> when, Function<A, B> f) {
      this.when = when;
      this.f = f;
    }

    @Override
    public boolean isDefinedAt(A x) {
      return when.test(x);
    }

    @Override
    public <A1 extends A, B1> B1 applyOrElse(A1 x, scala.Function1<A1, B1> dflt) {
      if (when.test(x)) {
        @SuppressWarnings("unchecked")
        B1 r = (B1) f.apply(x);
        return r;
      }
      return dflt.apply(x);
    }
  }
}
